import LockstepKernel
import Synchronization

/// One counter per CPU. Relaxed: each test reads them after the stop that bumped them
/// returned, which orders the bumps before the read (the done record's lock), so a
/// missing order in the protocol shows up under ThreadSanitizer instead of being
/// papered over by the probe.
final class PerCPUCounters: @unchecked Sendable {
  /// How many CPUs.
  let count: Int
  private let slots: UnsafeMutablePointer<Atomic<Int>>

  /// `count` counters at zero.
  init(_ count: Int) {
    self.count = count
    slots = .allocate(capacity: count)
    for slot in 0..<count { (slots + slot).initialize(to: Atomic(0)) }
  }

  deinit {
    slots.deinitialize(count: count)
    slots.deallocate()
  }

  /// Adds 1 to `cpu`'s counter.
  func bump(_ cpu: CPUIndex) { (slots + cpu.rawValue).pointee.wrappingAdd(1, ordering: .relaxed) }

  /// Every counter now, by CPU.
  var values: [Int] { (0..<count).map { (slots + $0).pointee.load(ordering: .relaxed) } }

  /// The sum of the counters.
  var total: Int { values.reduce(0, +) }
}

/// What the stop functions of one test record and obey, passed to them as their
/// argument (`argument`). The test keeps it alive until every stop it made returned.
final class StopProbe: @unchecked Sendable {
  /// Runs of the function, by the CPU it ran on.
  let runs: PerCPUCounters
  /// Runs that found interrupts on.
  let runsWithInterruptsOn = Atomic<Int>(0)
  /// Runs that found preemption enabled (a stopper runs its function with it off).
  let runsPreemptible = Atomic<Int>(0)
  /// The preemption count the last run found.
  let lastPreemptCount = Atomic<Int>(-1)
  /// The CPU whose run returns `failure`; every other run returns 0.
  let failingCPU: Int
  let failure: Int32
  /// Runs of `block` that have started; `block` returns once `released` is set.
  let entered = Atomic<Int>(0)
  let released = Atomic<Bool>(false)
  /// For `blockParkingOwnCPU`: the test's word to park, and the function's answer.
  let parkNow = Atomic<Bool>(false)
  let parkCalled = Atomic<Bool>(false)
  /// For `waitForEveryone`: runs arrived so far, and how many the current call waits
  /// for; waits that gave up.
  let arrivals = Atomic<Int>(0)
  let arrivalTarget = Atomic<Int>(0)
  let arrivalTimeouts = Atomic<Int>(0)
  /// The stoppers, for `blockParkingOwnCPU`.
  let stoppers: Stoppers<FakeSchedPlatform>?

  /// A probe for `cpuCount` CPUs; the run on `failingCPU` (if any) returns `failure`.
  init(
    cpuCount: Int, failingCPU: Int = -1, failure: Int32 = 0, stoppers: Stoppers<FakeSchedPlatform>? = nil
  ) {
    runs = PerCPUCounters(cpuCount)
    self.failingCPU = failingCPU
    self.failure = failure
    self.stoppers = stoppers
  }

  /// The argument that leads a stop function here.
  var argument: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

  /// The probe behind a stop function's argument.
  static func of(_ argument: UnsafeMutableRawPointer?) -> StopProbe {
    Unmanaged<StopProbe>.fromOpaque(argument!).takeUnretainedValue()
  }

  /// Records a run on the calling CPU and returns what that CPU's run returns.
  func recordRun() -> Int32 {
    let cpu = FakeSchedPlatform.currentCPU
    runs.bump(cpu)
    if FakeSchedPlatform.interruptsEnabled { runsWithInterruptsOn.wrappingAdd(1, ordering: .relaxed) }
    let depth = FakeSchedCPU.current.machine.scheduler.preemptCount
    if depth == 0 { runsPreemptible.wrappingAdd(1, ordering: .relaxed) }
    lastPreemptCount.store(depth, ordering: .relaxed)
    return cpu.rawValue == failingCPU ? failure : 0
  }

  /// Lets every `block` run return.
  func release() {
    released.store(true, ordering: .releasing)  // Pairs with the acquire in `block`.
  }

  /// `(runs, runs with interrupts on, preemptible runs)`, for failure messages.
  var summary: String {
    "runs \(runs.values), with interrupts on \(runsWithInterruptsOn.load(ordering: .relaxed)),"
      + " preemptible \(runsPreemptible.load(ordering: .relaxed))"
  }
}

/// The stop functions the tests queue. C function pointers, so each finds its state
/// through the `StopProbe` its argument points to.
enum StopFunctions {
  /// Records the run; returns the probe's result for this CPU.
  static let count: StopFunction = { StopProbe.of($0).recordRun() }

  /// Records the run, then holds the stopper (spinning, preemption off) until the probe
  /// is released, 10 s at most.
  static let block: StopFunction = { argument in
    let probe = StopProbe.of(argument)
    let result = probe.recordRun()
    probe.entered.wrappingAdd(1, ordering: .releasing)  // Pairs with the test's acquire.
    FakeSchedPlatform.spin(timeout: 10) { probe.released.load(ordering: .acquiring) }
    return result
  }

  /// Records the run, then waits (10 s at most) until `arrivalTarget` runs have arrived:
  /// a `stopCPUs` function that relies on every CPU of the call starting it, which
  /// Linux allows ("All stop_cpus() calls are serialized").
  static let waitForEveryone: StopFunction = { argument in
    let probe = StopProbe.of(argument)
    let result = probe.recordRun()
    let target = probe.arrivalTarget.load(ordering: .relaxed)
    probe.arrivals.wrappingAdd(1, ordering: .relaxed)
    let arrived = FakeSchedPlatform.spin(timeout: 10) { probe.arrivals.load(ordering: .relaxed) >= target }
    if !arrived { probe.arrivalTimeouts.wrappingAdd(1, ordering: .relaxed) }
    return result
  }

  /// `block`, but parks the stopper it runs in (`Stoppers.park`, from inside a stop on
  /// the CPU going down, as hotplug calls it) when the test sets `parkNow`, then waits
  /// for the release. Returns 1 if it was never told to park within 10 s.
  static let blockParkingOwnCPU: StopFunction = { argument in
    let probe = StopProbe.of(argument)
    _ = probe.recordRun()
    probe.entered.wrappingAdd(1, ordering: .releasing)  // Pairs with the test's acquire.
    guard FakeSchedPlatform.spin(timeout: 10, until: { probe.parkNow.load(ordering: .acquiring) }) else {
      return 1
    }
    probe.stoppers!.park(FakeSchedPlatform.currentCPU)
    probe.parkCalled.store(true, ordering: .releasing)  // Pairs with the test's acquire.
    FakeSchedPlatform.spin(timeout: 10) { probe.released.load(ordering: .acquiring) }
    return 0
  }

  /// Records the run and leaves preemption disabled once more than it found it.
  static let leakPreemptDisable: StopFunction = { argument in
    let result = StopProbe.of(argument).recordRun()
    FakeSchedCPU.current.machine.scheduler.preemptDisable()
    return result
  }

  /// Records the run and enables preemption once more than it disabled it.
  static let extraPreemptEnable: StopFunction = { argument in
    let result = StopProbe.of(argument).recordRun()
    FakeSchedCPU.current.machine.scheduler.preemptEnable()
    return result
  }
}
