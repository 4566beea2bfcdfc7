import Glibc
import LockstepKernel
import Synchronization

/// The thread-local slot holding the running thread's `FakeSendStopCPU` (unretained:
/// its machine owns it and joins its thread before letting it go).
private let fakeSendStopCPUKey: pthread_key_t = {
  var key = pthread_key_t()
  precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
  return key
}()

/// One CPU of a `FakeSendStopMachine`: a host thread whose idle loop polls an inbox of
/// two pending bits, the stop vector (a maskable interrupt, the local APIC's IRR bit)
/// and the NMI, and runs the jobs a test gives it.
///
/// Its handlers mirror Kernel/Arch/x86_64/SMPStop.swift: the vector's and the NMI's
/// guards, then the stopped CPU's last steps (`markStopped`, `acknowledge`) and a park
/// that never returns (the thread leaves with `pthread_exit` at teardown). The test sets
/// how the CPU answers, before the stop or from a job:
///
/// - responsive: interrupts on, it takes the vector at its next interrupt point;
/// - `interruptsOn` false: a vector stays pending (taken if they come back on), an NMI
///   still gets through;
/// - `isStuck`: it takes nothing at all (a CPU hung in an NMI, or in SMM);
/// - `dropNext(_:_:)`: the next vectors or NMIs vanish on the way;
/// - `ackDelayNanoseconds`: its stop path works this long between `markStopped` and its
///   acknowledgement (a rehearsal's, before its acknowledgement), so a stop that waited
///   for the lifecycle state instead of the acknowledgement returns too soon.
///
/// Interrupt points: the idle loop, `FakeSendStopPlatform.relax()`, and the slow stop
/// path's delay (NMIs only there: interrupts are off).
final class FakeSendStopCPU: @unchecked Sendable {
  /// This CPU's number.
  let index: CPUIndex
  /// The machine it belongs to, which owns it and outlives its thread.
  unowned let machine: FakeSendStopMachine

  // MARK: How it answers (set by the test)

  /// The interrupt-enable flag (RFLAGS.IF). Set by the test before the stop, then by this
  /// CPU's thread only (its handler and its stop path).
  let interruptsOn = Atomic<Bool>(true)
  /// Takes no interrupt at all, not even an NMI.
  let isStuck = Atomic<Bool>(false)
  /// Work in the stop path between `markStopped` and the acknowledgement.
  let ackDelayNanoseconds = Atomic<UInt64>(0)
  private let vectorDropBudget = Atomic<Int>(0)
  private let nmiDropBudget = Atomic<Int>(0)

  // MARK: What happened (relaxed counters, read by the test after the stop)

  /// Stop vectors that reached the inbox, and those dropped on the way.
  let vectorsDelivered = Atomic<Int>(0)
  let vectorsDropped = Atomic<Int>(0)
  /// NMIs that reached the inbox, and those dropped on the way.
  let nmisDelivered = Atomic<Int>(0)
  let nmisDropped = Atomic<Int>(0)
  /// Stop vectors taken with no stop in progress (left pending by a rehearsal).
  let strayVectors = Atomic<Int>(0)
  /// NMIs taken that the stop did not ask for.
  let foreignNMIs = Atomic<Int>(0)
  /// Stop NMIs taken while this CPU was already on its stop path (`enter` said no).
  let nmisWhileStopping = Atomic<Int>(0)
  /// Times this CPU ran its stop path's last steps; at most one.
  let stopPathRuns = Atomic<Int>(0)
  /// Rehearsal stops this CPU returned from.
  let rehearsalsReturned = Atomic<Int>(0)
  /// Whether the CPU has parked for good.
  let isParked = Atomic<Bool>(false)
  /// Whether the CPU ever finished starting (it was put online, or it joined): a stop
  /// request may be sent only to such a CPU (`SendStopPlatform.sendStopRequest`).
  let hasBeenOnline = Atomic<Bool>(false)

  /// The inbox: the stop vector pending (IRR), an NMI pending. Release by the sender,
  /// acquire by the taker: the sender's records (`nmiRequested`) are visible.
  private let vectorPending = Atomic<Bool>(false)
  private let nmiPending = Atomic<Bool>(false)
  /// Inside the NMI handler: NMIs are blocked until it returns. This thread only.
  private var inNMI = false

  private let monitor = Monitor()
  /// Jobs to run, oldest first. Guarded by `monitor`, as are the two below.
  private var mailbox: [FakeJob] = []
  private var tearingDown = false
  private var exited = false
  /// `tearingDown`, for `relax()` to look at without the monitor.
  private let leaving = Atomic<Bool>(false)
  private var thread = pthread_t()

  /// A CPU of `machine`; its thread starts with `start()`.
  init(index: Int, machine: FakeSendStopMachine) {
    self.index = CPUIndex(index)
    self.machine = machine
  }

  /// The fake CPU the calling thread is. Traps on any other thread.
  static var current: FakeSendStopCPU {
    guard let raw = pthread_getspecific(fakeSendStopCPUKey) else {
      preconditionFailure("FakeSendStopPlatform used on a thread that is not a fake CPU")
    }
    return Unmanaged<FakeSendStopCPU>.fromOpaque(raw).takeUnretainedValue()
  }

  // MARK: Thread life

  /// Starts the CPU's thread.
  func start() {
    let context = Unmanaged.passUnretained(self).toOpaque()
    let status = pthread_create(
      &thread, nil,
      { context in
        Unmanaged<FakeSendStopCPU>.fromOpaque(context!).takeUnretainedValue().threadMain()
        return nil
      }, context)
    precondition(status == 0, "pthread_create failed")
  }

  private func threadMain() {
    pthread_setspecific(fakeSendStopCPUKey, Unmanaged.passUnretained(self).toOpaque())
    while let job = nextJob() { job.execute() }
    leave()
  }

  /// The idle loop: takes what the inbox holds and sleeps until a job, a delivery or the
  /// teardown arrives. Returns nil at teardown.
  private func nextJob() -> FakeJob? {
    while true {
      interruptPoint()
      let next: FakeJob?? = monitor.withLock {
        if !mailbox.isEmpty { return .some(mailbox.removeFirst()) }
        if tearingDown { return .some(nil) }
        // A sender sets the pending bit before it takes the monitor to wake us, so this
        // check under the monitor misses no wake-up; the bound is a guard.
        if !hasInterruptToTake { monitor.wait(until: HostClock.deadline(after: 0.05)) }
        return nil
      }
      if let next { return next }
    }
  }

  private var hasInterruptToTake: Bool {
    !isStuck.load(ordering: .relaxed)
      && (nmiPending.load(ordering: .relaxed)
        || (interruptsOn.load(ordering: .relaxed) && vectorPending.load(ordering: .relaxed)))
  }

  /// Queues `job` for this CPU's thread.
  func submit(_ job: FakeJob) {
    monitor.withLock {
      mailbox.append(job)
      monitor.broadcast()
    }
  }

  /// Wakes the idle loop to look at its inbox again (after the test changed how the CPU
  /// answers).
  func poke() { monitor.withLock { monitor.broadcast() } }

  /// Asks the thread to leave (from its idle loop, its park, or its next `relax()`) and
  /// waits for it up to `deadline`; joins it if it left. False if it is stuck.
  func stop(before deadline: UInt64) -> Bool {
    leaving.store(true, ordering: .relaxed)
    monitor.withLock {
      tearingDown = true
      monitor.broadcast()
    }
    guard monitor.wait(until: deadline, for: { exited }) else { return false }
    pthread_join(thread, nil)
    return true
  }

  /// Whether the machine is being torn down. Any thread.
  var isTearingDown: Bool { leaving.load(ordering: .relaxed) }

  /// Ends this CPU's thread. This CPU's thread only.
  func leave() -> Never {
    monitor.withLock {
      exited = true
      monitor.broadcast()
    }
    pthread_exit(nil)
  }

  // MARK: Deliveries (from the stopping CPU)

  /// `sendStopRequest`'s delivery: marks the vector or the NMI pending and wakes the CPU,
  /// unless the drop budget says to lose it.
  func deliver(_ mechanism: StopMechanism) {
    if mechanism == .nmi {
      if Self.spend(nmiDropBudget) {
        nmisDropped.add(1, ordering: .relaxed)
        return
      }
      nmisDelivered.add(1, ordering: .relaxed)
      // Release: pairs with the acquire in `interruptPoint`.
      nmiPending.store(true, ordering: .releasing)
    } else {
      if Self.spend(vectorDropBudget) {
        vectorsDropped.add(1, ordering: .relaxed)
        return
      }
      vectorsDelivered.add(1, ordering: .relaxed)
      // Release: pairs with the acquire in `interruptPoint`.
      vectorPending.store(true, ordering: .releasing)
    }
    poke()
  }

  /// Makes the next `count` deliveries of `mechanism` (`.vector` or `.nmi`) vanish.
  func dropNext(_ count: Int, _ mechanism: StopMechanism) {
    if mechanism == .nmi {
      nmiDropBudget.add(count, ordering: .relaxed)
    } else {
      vectorDropBudget.add(count, ordering: .relaxed)
    }
  }

  /// Takes one from `budget` if it has any left.
  private static func spend(_ budget: borrowing Atomic<Int>) -> Bool {
    var left = budget.load(ordering: .relaxed)
    while left > 0 {
      let exchange = budget.compareExchange(expected: left, desired: left - 1, ordering: .relaxed)
      if exchange.exchanged { return true }
      left = exchange.original
    }
    return false
  }

  // MARK: Handlers (this CPU's thread)

  /// An interrupt point: an NMI if one is pending (and none is being handled), then the
  /// stop vector if one is pending and interrupts are on, handled with them off.
  func interruptPoint() {
    guard !isStuck.load(ordering: .relaxed) else { return }
    if !inNMI && nmiPending.exchange(false, ordering: .acquiring) {
      inNMI = true
      takeNMI()
      inNMI = false
    }
    if interruptsOn.load(ordering: .relaxed) && vectorPending.exchange(false, ordering: .acquiring) {
      interruptsOn.store(false, ordering: .relaxed)
      takeStopVector()
      interruptsOn.store(true, ordering: .relaxed)
    }
  }

  /// `SMPStop.handleStopVector`.
  private func takeStopVector() {
    let stop = machine.sendStop
    guard stop.isInProgress else {
      strayVectors.add(1, ordering: .relaxed)
      return
    }
    guard stop.enter(index) else { return }
    if stop.isRehearsal {
      workBeforeAcknowledging()
      stop.acknowledgeRehearsal(index, .vector)
      rehearsalsReturned.add(1, ordering: .relaxed)
      return
    }
    stopHere(.vector)
  }

  /// `SMPStop.handleNMI`.
  private func takeNMI() {
    let stop = machine.sendStop
    guard stop.isRequestedByNMI(index) else {
      foreignNMIs.add(1, ordering: .relaxed)
      return
    }
    guard stop.enter(index) else {
      nmisWhileStopping.add(1, ordering: .relaxed)
      return
    }
    if stop.isRehearsal {
      workBeforeAcknowledging()
      stop.acknowledgeRehearsal(index, .nmi)
      rehearsalsReturned.add(1, ordering: .relaxed)
      return
    }
    stopHere(.nmi)
  }

  /// `SMPStop.stopThisCPU`: a caller that lost the race stops itself.
  func stopThisCPU(_ mechanism: StopMechanism) -> Never {
    interruptsOn.store(false, ordering: .relaxed)
    guard machine.sendStop.enter(index) else { park() }
    stopHere(mechanism)
  }

  /// `SMPStop.parkStartingCPU`: a starting AP that found the stop parks and says so.
  func parkStartingCPU() -> Never {
    interruptsOn.store(false, ordering: .relaxed)
    let stop = machine.sendStop
    if stop.enter(index) { stop.acknowledge(index, .parkedWhileStarting) }
    park()
  }

  /// The stopped CPU's last steps, as `SMPStop.stopHere`: interrupts off, `stopped`,
  /// the acknowledgement (after the configured delay), the park.
  private func stopHere(_ mechanism: StopMechanism) -> Never {
    interruptsOn.store(false, ordering: .relaxed)
    stopPathRuns.add(1, ordering: .relaxed)
    machine.lifecycle(index.rawValue).pointee.markStopped()
    workBeforeAcknowledging()
    machine.sendStop.acknowledge(index, mechanism)
    park()
  }

  /// The configured work (`ackDelayNanoseconds`) between entering the stop path and
  /// acknowledging, with interrupts off: an NMI still gets in.
  private func workBeforeAcknowledging() {
    let delay = ackDelayNanoseconds.load(ordering: .relaxed)
    guard delay > 0 else { return }
    let end = HostClock.now() + delay
    while HostClock.now() < end {
      interruptPoint()
      usleep(50)
    }
  }

  /// Halts for good: sleeps until the teardown, then leaves.
  func park() -> Never {
    isParked.store(true, ordering: .relaxed)
    monitor.withLock {
      while !tearingDown { monitor.wait(until: HostClock.deadline(after: 1)) }
    }
    leave()
  }

  // MARK: The starting AP (a job on this CPU)

  /// Where the AP's start-up path ended (`runStartupPath`).
  enum StartupPathEnd: Int {
    case notRun = 0
    /// It found the stop in progress before trying to join, and parked.
    case parkedAtLook = 1
    /// It went online.
    case joined = 2
    /// Its join found the CPU `stopped` (the stop's claim came first), and it parked.
    case refusedStopped = 3
    /// Its join was refused for another reason (a retry or a give-up).
    case refusedOther = 4
  }

  /// Where `runStartupPath` ended (a `StartupPathEnd`), set before it parks or returns.
  let startupPathEnd = Atomic<Int>(StartupPathEnd.notRun.rawValue)

  /// Kernel/Init/APMain.swift from the stop's look onwards, for the AP of `attempt`:
  /// parks if a stop is in progress (when `looksForStop`), else joins; parks if the join
  /// finds the CPU stopped. Once joined, it turns interrupts on and returns, and its idle
  /// loop answers the stop like any running CPU's. Any other refusal is returned.
  @discardableResult
  func runStartupPath(attempt: UInt32, looksForStop: Bool = true) -> JoinOutcome {
    interruptsOn.store(false, ordering: .relaxed)
    if looksForStop && machine.sendStop.mustPark() {
      startupPathEnd.store(StartupPathEnd.parkedAtLook.rawValue, ordering: .relaxed)
      parkStartingCPU()
    }
    let outcome = machine.lifecycle(index.rawValue).pointee.join(attempt: attempt)
    if outcome == .refused(.stopped) {
      startupPathEnd.store(StartupPathEnd.refusedStopped.rawValue, ordering: .relaxed)
      parkStartingCPU()
    }
    if outcome == .joined {
      hasBeenOnline.store(true, ordering: .relaxed)
      startupPathEnd.store(StartupPathEnd.joined.rawValue, ordering: .relaxed)
      interruptsOn.store(true, ordering: .relaxed)
    } else {
      startupPathEnd.store(StartupPathEnd.refusedOther.rawValue, ordering: .relaxed)
    }
    return outcome
  }

  /// Where `runStartupPath` ended.
  var startupPathEnded: StartupPathEnd {
    StartupPathEnd(rawValue: startupPathEnd.load(ordering: .relaxed)) ?? .notRun
  }

  /// A one-line picture of this CPU for failure messages.
  var summary: String {
    "CPU \(index.rawValue): \(machine.lifecycle(index.rawValue).pointee.state)"
      + " if=\(interruptsOn.load(ordering: .relaxed)) stuck=\(isStuck.load(ordering: .relaxed))"
      + " vectors=\(vectorsDelivered.load(ordering: .relaxed))/-\(vectorsDropped.load(ordering: .relaxed))"
      + " nmis=\(nmisDelivered.load(ordering: .relaxed))/-\(nmisDropped.load(ordering: .relaxed))"
      + " ack=\(machine.sendStop.acknowledgement(of: index).mechanism.name)"
      + " parked=\(isParked.load(ordering: .relaxed))"
  }
}
