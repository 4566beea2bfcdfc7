import Glibc
import LockstepKernel
import Synchronization

/// The thread-local slot holding the running thread's `FakeCPU` (unretained). A
/// pthread key: one load, no allocation, and correct under ThreadSanitizer.
private let fakeCPUKey: pthread_key_t = {
  var key = pthread_key_t()
  precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
  return key
}()

/// One CPU of a `FakeMachine`: a host thread with an interrupt flag, a pending call
/// interrupt, an online bit, and a mailbox of jobs that tests run on it.
///
/// Interrupt points, where a pending call interrupt is taken if interrupts are on: the
/// idle loop, `FakePlatform.relax()`, `FakePlatform.waitForInterrupt(atMost:)`, and
/// `FakePlatform.restoreInterrupts(_:)` when it turns interrupts on (as `sti` lets a
/// pending interrupt in). The handler runs `CrossCalls.handleInterrupt()` with
/// interrupts off.
final class FakeCPU: @unchecked Sendable {
  /// This CPU's number.
  let index: CPUIndex
  /// The machine it belongs to (which keeps it alive).
  unowned let machine: FakeMachine
  /// The interrupt-enable flag (RFLAGS.IF). Written only by this CPU's thread.
  let interruptsOn = Atomic<Bool>(true)
  /// A call interrupt is pending (the local APIC's IRR bit).
  let interruptPending = Atomic<Bool>(false)
  /// Whether the CPU is in the online mask.
  let online = Atomic<Bool>(true)
  /// Call interrupts that reached this CPU, dropped ones not included.
  let ipisDelivered = Atomic<Int>(0)
  /// Call interrupts dropped on purpose (see `dropNextIPIs`).
  let ipisDropped = Atomic<Int>(0)
  /// Call interrupts this CPU took (handler runs).
  let interruptsTaken = Atomic<Int>(0)
  /// `sendCallIPI(to:)` calls aimed at this CPU (queue IPIs and wake-ups alike).
  let unicastIPIs = Atomic<Int>(0)
  /// Naps in `waitForInterrupt` that ended at their time bound, not by an interrupt.
  let napsTimedOut = Atomic<Int>(0)
  private let dropBudget = Atomic<Int>(0)

  private let monitor = Monitor()
  /// Jobs to run, oldest first. Guarded by `monitor`.
  private var mailbox: [FakeJob] = []
  /// Guarded by `monitor`.
  private var stopRequested = false
  /// Guarded by `monitor`.
  private var exited = false
  private var thread = pthread_t()

  /// A CPU of `machine`; its thread starts with `start()`.
  init(index: Int, machine: FakeMachine) {
    self.index = CPUIndex(index)
    self.machine = machine
  }

  /// The fake CPU the calling thread is. Traps on any other thread: only fake CPUs may
  /// run kernel code.
  static var current: FakeCPU {
    guard let raw = pthread_getspecific(fakeCPUKey) else {
      preconditionFailure("FakePlatform used on a thread that is not a fake CPU")
    }
    return Unmanaged<FakeCPU>.fromOpaque(raw).takeUnretainedValue()
  }

  /// Whether the calling thread is a fake CPU.
  static var isOnFakeCPU: Bool { pthread_getspecific(fakeCPUKey) != nil }

  // MARK: Thread life

  /// Starts the CPU's thread.
  func start() {
    let context = Unmanaged.passRetained(self).toOpaque()
    let status = pthread_create(
      &thread, nil,
      { context in
        let cpu = Unmanaged<FakeCPU>.fromOpaque(context!).takeRetainedValue()
        cpu.threadMain()
        return nil
      }, context)
    precondition(status == 0, "pthread_create failed")
  }

  private func threadMain() {
    pthread_setspecific(fakeCPUKey, Unmanaged.passUnretained(self).toOpaque())
    while let job = nextJob() { job.execute() }
    monitor.withLock {
      exited = true
      monitor.broadcast()
    }
  }

  /// The idle loop: takes pending interrupts (if enabled) and sleeps until a job, an
  /// interrupt or a stop request arrives. Returns nil on stop.
  private func nextJob() -> FakeJob? {
    while true {
      takePendingInterrupt()
      let next: FakeJob?? = monitor.withLock {
        if !mailbox.isEmpty { return .some(mailbox.removeFirst()) }
        if stopRequested { return .some(nil) }
        if !canTakeInterrupt {
          // The sender sets the pending bit before taking the monitor to wake us, so
          // checking it under the monitor cannot miss a wake-up; the bound is a guard.
          monitor.wait(until: HostClock.deadline(after: 0.05))
        }
        return nil
      }
      if let next { return next }
    }
  }

  private var canTakeInterrupt: Bool {
    interruptsOn.load(ordering: .relaxed) && interruptPending.load(ordering: .relaxed)
  }

  /// Queues `job` for this CPU's thread.
  func submit(_ job: FakeJob) {
    monitor.withLock {
      mailbox.append(job)
      monitor.broadcast()
    }
  }

  /// Asks the thread to leave its idle loop and waits for it up to `deadline`; joins it
  /// if it left. Returns false if the thread is stuck (it is then left running).
  func stop(before deadline: UInt64) -> Bool {
    monitor.withLock {
      stopRequested = true
      monitor.broadcast()
    }
    guard monitor.wait(until: deadline, for: { exited }) else { return false }
    pthread_join(thread, nil)
    return true
  }

  // MARK: Interrupts

  /// The platform's IPI: marks a call interrupt pending and wakes the CPU, unless the
  /// drop budget says to lose this one.
  func deliverIPI() {
    var budget = dropBudget.load(ordering: .relaxed)
    while budget > 0 {
      let exchange = dropBudget.compareExchange(
        expected: budget, desired: budget - 1, ordering: .relaxed)
      if exchange.exchanged {
        ipisDropped.add(1, ordering: .relaxed)
        return
      }
      budget = exchange.original
    }
    ipisDelivered.add(1, ordering: .relaxed)
    // Release/acquire with takePendingInterrupt(); the call queue has its own ordering,
    // this only keeps the fake honest.
    interruptPending.store(true, ordering: .releasing)
    monitor.withLock { monitor.broadcast() }
  }

  /// Makes the next `count` IPIs to this CPU vanish.
  func dropNextIPIs(_ count: Int) {
    dropBudget.add(count, ordering: .relaxed)
  }

  /// An interrupt point: if interrupts are on and a call interrupt is pending, runs the
  /// handler with interrupts off. This CPU's thread only.
  func takePendingInterrupt() {
    guard interruptsOn.load(ordering: .relaxed) else { return }
    guard interruptPending.exchange(false, ordering: .acquiring) else { return }
    interruptsOn.store(false, ordering: .relaxed)
    interruptsTaken.add(1, ordering: .relaxed)
    machine.calls.handleInterrupt()
    interruptsOn.store(true, ordering: .relaxed)
  }

  /// `FakePlatform.waitForInterrupt(atMost:)`, modelled on the kernel's `sti; hlt`
  /// with a one-shot timer. Entered with interrupts off (the caller checked its
  /// condition under them); interrupts come on, an interrupt already pending is taken at
  /// once, else the CPU sleeps until one is raised or `nanoseconds` pass, and takes it.
  func waitForInterrupt(atMost nanoseconds: UInt64) {
    if interruptsOn.load(ordering: .relaxed) {
      machine.append(panic: "CPU \(index.rawValue): waitForInterrupt called with interrupts on")
      return
    }
    // `sti; hlt`: interrupts come on and the CPU sleeps; one already pending wakes it.
    interruptsOn.store(true, ordering: .relaxed)
    if interruptPending.load(ordering: .relaxed) {
      takePendingInterrupt()
      return
    }
    let deadline = HostClock.now() + nanoseconds
    let woken = monitor.wait(until: deadline) { interruptPending.load(ordering: .relaxed) }
    if !woken { napsTimedOut.add(1, ordering: .relaxed) }
    takePendingInterrupt()
  }

  /// A one-line picture of this CPU for failure messages.
  var summary: String {
    "CPU \(index.rawValue): online=\(online.load(ordering: .relaxed))"
      + " if=\(interruptsOn.load(ordering: .relaxed))"
      + " pending=\(interruptPending.load(ordering: .relaxed))"
      + " delivered=\(ipisDelivered.load(ordering: .relaxed))"
      + " dropped=\(ipisDropped.load(ordering: .relaxed))"
      + " taken=\(interruptsTaken.load(ordering: .relaxed))"
      + " napsTimedOut=\(napsTimedOut.load(ordering: .relaxed))"
  }
}

/// A closure a test runs on one fake CPU, and its completion.
final class FakeJob: @unchecked Sendable {
  /// The CPU it runs on.
  let cpu: Int
  private let body: () -> Void
  private let monitor = Monitor()
  /// Guarded by `monitor`.
  private var finished = false

  /// A job running `body` on `cpu`.
  init(cpu: Int, _ body: @escaping () -> Void) {
    self.cpu = cpu
    self.body = body
  }

  /// Runs the body on the CPU's thread, then signals completion.
  func execute() {
    body()
    monitor.withLock {
      finished = true
      monitor.broadcast()
    }
  }

  /// Waits up to `seconds` for the job to finish; returns whether it did.
  func wait(timeout seconds: Double) -> Bool {
    monitor.wait(until: HostClock.deadline(after: seconds)) { finished }
  }
}
