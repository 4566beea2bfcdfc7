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
  /// This CPU's timers (sleep timeouts, the tick): armed and run by its own running
  /// kernel thread only, with interrupts off, as on the kernel's CPUs.
  var timers = TimerQueue()
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
    if timers.earliestDeadline.map({ $0 <= HostClock.now() }) == true {
      interruptPending.store(true, ordering: .relaxed)  // the timer's interrupt
    }
    guard interruptPending.exchange(false, ordering: .acquiring) else { return }
    interruptsOn.store(false, ordering: .relaxed)
    while let due = timers.takeExpired(now: HostClock.now()) {
      let (function, argument) = (due.pointee.function, due.pointee.argument)
      function?(argument)
    }
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
    let bound = min(HostClock.now() + nanoseconds, timers.earliestDeadline ?? UInt64.max)
    _ = monitor.wait(until: bound) {
      interruptPending.load(ordering: .relaxed) || machine.isStopping
    }
    interruptPoint()
  }
}
