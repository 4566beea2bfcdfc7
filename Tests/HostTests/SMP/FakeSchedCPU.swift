import Glibc
import LockstepKernel
import Synchronization

/// The thread-local slot holding the running host thread's `FakeSchedCPU` (unretained).
private let schedCPUKey: pthread_key_t = {
  var key = pthread_key_t()
  precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
  return key
}()

/// One CPU of a `FakeSchedMachine`: an interrupt flag, one interrupt vector (pending
/// bit), and the requests that vector serves: "reschedule" (`sendReschedule`) and
/// "start these threads" (from the test's host thread, which is no CPU and so cannot
/// call `wake` itself).
///
/// Interrupt points, where the running kernel thread takes a pending interrupt if its
/// interrupts are on: `relax()`, `restoreInterrupts` turning them on, and the idle
/// thread's `waitForInterrupt`. The handler runs with interrupts off: it wakes the
/// threads to start, then `preemptOnInterruptExit`, which may switch threads; the
/// interrupted thread returns from the handler when it runs again.
final class FakeSchedCPU: @unchecked Sendable {
  /// This CPU's number.
  let index: CPUIndex
  /// The machine it belongs to (which keeps it alive).
  unowned let machine: FakeSchedMachine
  /// RFLAGS.IF. Only the kernel thread running on this CPU touches it; the baton
  /// hand-off orders one runner's accesses before the next's. Off until the idle
  /// thread has adopted the CPU.
  let interruptsOn = Atomic<Bool>(false)
  /// The interrupt is pending (the local APIC's IRR bit).
  let interruptPending = Atomic<Bool>(false)
  /// Interrupts taken (handler runs); relaxed, a statistic.
  let interruptsTaken = Atomic<Int>(0)
  private let monitor = Monitor()
  /// Threads to start here. Guarded by `monitor`.
  private var starts: [UnsafeMutablePointer<KernelThread>] = []

  /// CPU `index` of `machine`.
  init(index: Int, machine: FakeSchedMachine) {
    self.index = CPUIndex(index)
    self.machine = machine
  }

  /// The CPU of the calling kernel thread. Traps on any other host thread.
  static var current: FakeSchedCPU {
    guard let raw = pthread_getspecific(schedCPUKey) else {
      preconditionFailure("FakeSchedPlatform used on a thread that backs no kernel thread")
    }
    return Unmanaged<FakeSchedCPU>.fromOpaque(raw).takeUnretainedValue()
  }

  /// Binds the calling host thread to this CPU, for good.
  func bindCallingThread() {
    pthread_setspecific(schedCPUKey, Unmanaged.passUnretained(self).toOpaque())
  }

  /// Marks the interrupt pending and wakes the CPU if it naps. Any host thread.
  func raiseInterrupt() {
    // Release pairs with the acquiring exchange in interruptPoint(): what the sender
    // did first (a run-queue change, a start request) is visible to the handler.
    interruptPending.store(true, ordering: .releasing)
    monitor.withLock { monitor.broadcast() }
  }

  /// Asks this CPU to make `thread` (one of its own, new) runnable. Any host thread.
  func requestStart(of thread: UnsafeMutablePointer<KernelThread>) {
    monitor.withLock { starts.append(thread) }
    raiseInterrupt()
  }

  /// An interrupt point: if interrupts are on and the interrupt is pending, runs the
  /// handler with interrupts off. The running kernel thread only.
  func interruptPoint() {
    guard interruptsOn.load(ordering: .relaxed) else { return }
    guard interruptPending.exchange(false, ordering: .acquiring) else { return }
    interruptsOn.store(false, ordering: .relaxed)
    interruptsTaken.add(1, ordering: .relaxed)
    let toStart = monitor.withLock {
      defer { starts.removeAll() }
      return starts
    }
    for thread in toStart { machine.scheduler.wake(thread) }
    machine.scheduler.preemptOnInterruptExit(interruptedWithInterruptsOn: true)
    interruptsOn.store(true, ordering: .relaxed)
  }

  /// The idle thread's `sti; hlt`: entered with interrupts off, turns them on, naps
  /// until the interrupt is raised (or the machine stops) or `nanoseconds` pass, and
  /// takes it.
  func waitForInterrupt(atMost nanoseconds: UInt64) {
    interruptsOn.store(true, ordering: .relaxed)
    // The sender sets the pending bit before taking the monitor to wake us, so checking
    // it under the monitor cannot miss a wake-up; the time bound is a guard.
    _ = monitor.wait(until: HostClock.now() + nanoseconds) {
      interruptPending.load(ordering: .relaxed) || machine.isStopping
    }
    interruptPoint()
  }
}

/// The host side of one kernel thread: its `KernelThread`, the host thread behind it,
/// and its baton. `KernelThread.savedContext` holds this object's address: the fake's
/// "saved context" is the identity of the host thread to resume.
final class FakeKernelThread: @unchecked Sendable {
  /// The kernel's view of the thread.
  let thread: UnsafeMutablePointer<KernelThread>
  /// Its CPU.
  unowned let cpu: FakeSchedCPU
  private let monitor = Monitor()
  /// Whether this thread may run (its CPU was handed to it). Guarded by `monitor`.
  private var hasBaton = false
  /// Whether its body returned. Guarded by `monitor`.
  private var finished = false

  /// A new kernel thread `name` of `priority` on `cpu`; no host thread yet.
  init(name: ThreadName, priority: ThreadPriority, cpu: FakeSchedCPU) {
    self.cpu = cpu
    thread = .allocate(capacity: 1)
    thread.initialize(
      to: KernelThread(name: name, priority: priority, cpu: cpu.index, function: nil, argument: nil))
    thread.pointee.savedContext = UInt64(UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque()))
  }

  deinit {
    thread.deinitialize(count: 1)
    thread.deallocate()
  }

  /// The object behind `thread` (which must be a fake's).
  static func backing(_ thread: UnsafeMutablePointer<KernelThread>) -> FakeKernelThread {
    let raw = UnsafeRawPointer(bitPattern: UInt(thread.pointee.savedContext))!
    return Unmanaged<FakeKernelThread>.fromOpaque(raw).takeUnretainedValue()
  }

  /// Lets this thread's host thread run: its CPU is handed to it.
  func giveBaton() {
    monitor.withLock {
      hasBaton = true
      monitor.broadcast()
    }
  }

  /// Waits for the baton, in bounded slices: once the machine is abandoned (a test
  /// failed or expected a panic), the host thread leaves instead.
  func takeBaton() {
    while true {
      let taken = monitor.withLock {
        if !hasBaton { monitor.wait(until: HostClock.deadline(after: 0.05)) }
        defer { hasBaton = false }
        return hasBaton
      }
      if taken { return }
      if cpu.machine.isAbandoned { cpu.machine.leave() }
    }
  }

  /// Records that the body returned.
  func markFinished() {
    monitor.withLock {
      finished = true
      monitor.broadcast()
    }
  }

  /// Waits until the body returned or `deadline` passes; returns whether it did.
  func waitFinished(until deadline: UInt64) -> Bool {
    monitor.wait(until: deadline) { finished }
  }

  /// Whether the body returned.
  var isFinished: Bool { monitor.withLock { finished } }

  /// `name state finished` for failure reports.
  var summary: String {
    let name = thread.pointee.name
    let number = name.number.map { "/\($0)" } ?? ""
    return "\(name.prefix)\(number)@\(cpu.index.rawValue):\(thread.pointee.state)\(isFinished ? "+done" : "")"
  }
}
