import Synchronization

/// The `sched` suite's preemption cases: a normal thread spins on a CPU (interrupts on,
/// interrupts off, or preemption disabled); a stopper-class thread is woken for that
/// CPU from CPU 0; the TSC says whether it ran while the spinner still spun.
enum SchedPreemptionCases {
  /// How the spinner spins.
  enum Mode: Int {
    case interruptsOn = 0
    case interruptsOff = 1
    case preemptionDisabled = 2
  }

  /// Shared by the spinner, the stopper and CPU 0. TSC stamps; 0 = not yet.
  final class Race {
    let mode: Mode
    let spinning = Atomic<Bool>(false)
    let stop = Atomic<Bool>(false)
    let stopperRan = Atomic<UInt64>(0)
    let spinnerLetGo = Atomic<UInt64>(0)
    let finished = Completion<X86_64Platform>()
    init(mode: Mode) { self.mode = mode }
    var info: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
    static func from(_ info: UnsafeMutableRawPointer?) -> Race {
      Unmanaged<Race>.fromOpaque(info!).takeUnretainedValue()
    }
  }

  /// How long a spinner that keeps its CPU spins before letting go.
  static let heldNanoseconds: UInt64 = 50_000_000
  /// How long a preemptible spinner spins at most, waiting to be told to stop.
  static let boundNanoseconds: UInt64 = 2_000_000_000

  private static let spinner: CallFunction = { info in
    let race = Race.from(info)
    if race.mode == .interruptsOff { CPUInstructions.disableInterrupts() }
    if race.mode == .preemptionDisabled { Threads.scheduler.preemptDisable() }
    race.spinning.store(true, ordering: .releasing)  // pairs with CPU 0's acquire
    let start = Clock.nanoseconds()
    let limit = race.mode == .interruptsOn ? boundNanoseconds : heldNanoseconds
    while !race.stop.load(ordering: .acquiring) && Clock.nanoseconds() - start < limit {
      CPUInstructions.pause()
    }
    // Stamped before letting go: a stopper that ran before this stamp preempted us.
    race.spinnerLetGo.store(CPUInstructions.readTSC(), ordering: .relaxed)
    if race.mode == .interruptsOff { CPUInstructions.enableInterrupts() }
    if race.mode == .preemptionDisabled { Threads.scheduler.preemptEnable() }
    race.finished.complete(in: Threads.scheduler)
  }

  private static let stopper: CallFunction = { info in
    let race = Race.from(info)
    race.stopperRan.store(CPUInstructions.readTSC(), ordering: .relaxed)
    race.stop.store(true, ordering: .releasing)  // pairs with the spinner's acquire
  }

  /// Runs one race on the last online CPU; returns (woken at, stopper ran at, spinner
  /// let go at) in TSC ticks, or a failure.
  private static func race(_ mode: Mode) -> Result<(UInt64, UInt64, UInt64), RaceFailure> {
    guard let target = CPUs.online.reversed().first(where: { $0 != X86_64Platform.currentCPU }) else {
      return .failure(.oneCPU)
    }
    let race = Race(mode: mode)
    Threads.start(
      Threads.create(
        ThreadName("spinner", target.rawValue), on: target, function: spinner, argument: race.info))
    // Acquire pairs with the spinner's release: it is on its CPU and spinning.
    guard waitUntil(milliseconds: 1000, { race.spinning.load(ordering: .acquiring) }) else {
      return .failure(.spinnerDidNotStart)
    }
    let stopperThread = Threads.create(
      ThreadName("stopper-test", target.rawValue), priority: .stopper, on: target, function: stopper,
      argument: race.info)
    let woken = CPUInstructions.readTSC()
    Threads.start(stopperThread)
    guard race.finished.wait(in: Threads.scheduler, timeoutNanoseconds: 3_000_000_000) else {
      return .failure(.spinnerDidNotFinish)
    }
    guard waitUntil(milliseconds: 1000, { race.stopperRan.load(ordering: .relaxed) != 0 }) else {
      return .failure(.stopperNeverRan)
    }
    return .success(
      (woken, race.stopperRan.load(ordering: .relaxed), race.spinnerLetGo.load(ordering: .relaxed)))
  }

  enum RaceFailure: Error {
    case oneCPU, spinnerDidNotStart, spinnerDidNotFinish, stopperNeverRan
  }

  private static func describe(_ failure: RaceFailure) -> TestResult {
    switch failure {
    case .oneCPU: .skip("one CPU online")
    case .spinnerDidNotStart: .fail("the spinner did not start within 1 s")
    case .spinnerDidNotFinish: .fail("the spinner did not finish within 3 s (it spins 2 s at most)")
    case .stopperNeverRan: .fail("the stopper thread never ran")
    }
  }

  /// A stopper woken from another CPU preempts a thread spinning with interrupts on:
  /// it runs while the spinner still spins (the spinner only stops when it has run).
  static func preemptsSpinner() -> TestResult {
    switch race(.interruptsOn) {
    case .failure(let failure): return describe(failure)
    case .success(let (woken, ran, letGo)):
      guard ran < letGo else { return .fail("the stopper ran only after the spinner let go") }
      KTAP.diagnostic(
        "preempted a spinning thread \(Clock.ticksToNanoseconds(ran &- woken) / 1000) us after the wake-up")
      return .pass
    }
  }

  /// With interrupts off the spinner keeps its CPU; the wake-up is delivered once they
  /// come on, and the stopper runs after the spinner let go.
  static func interruptsOffIsNotPreempted() -> TestResult {
    keepsItsCPU(.interruptsOff, "the stopper ran while the spinner had interrupts off")
  }

  /// With preemption disabled the spinner keeps its CPU (interrupts are on, so the IPI
  /// arrives, but the interrupt exit must not switch); `preemptEnable()` then switches.
  static func preemptDisabledIsNotPreempted() -> TestResult {
    keepsItsCPU(.preemptionDisabled, "the stopper ran while preemption was disabled")
  }

  /// A race in `mode` in which the stopper must run only after the spinner let go.
  private static func keepsItsCPU(_ mode: Mode, _ failure: StaticString) -> TestResult {
    switch race(mode) {
    case .failure(let reason): return describe(reason)
    case .success(let (_, ran, letGo)): return ran > letGo ? .pass : .fail("\(failure)")
    }
  }
}
