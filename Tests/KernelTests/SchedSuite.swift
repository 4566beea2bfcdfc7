import Synchronization

/// `ktest=sched`: kernel threads on real CPUs: binding, completions across CPUs,
/// preemption by a more urgent thread, and no preemption with interrupts or
/// preemption off.
enum SchedSuite {
  static let suite = KernelTestSuite(
    name: "sched",
    cases: [
      KernelTestCase(name: "threads_run_on_their_cpu", run: threadsRunOnTheirCPU),
      KernelTestCase(name: "completion_ping_pong_across_cpus", run: completionPingPong),
      KernelTestCase(name: "complete_all_wakes_every_waiter", run: completeAllWakesEveryone),
      KernelTestCase(name: "stopper_preempts_a_spinning_thread", run: SchedPreemptionCases.preemptsSpinner),
      KernelTestCase(
        name: "no_preemption_with_interrupts_off", run: SchedPreemptionCases.interruptsOffIsNotPreempted),
      KernelTestCase(
        name: "no_preemption_while_disabled", run: SchedPreemptionCases.preemptDisabledIsNotPreempted),
      KernelTestCase(
        name: "sleepers_wake_in_deadline_order", run: SchedTimeCases.sleepersWakeInDeadlineOrder),
      KernelTestCase(name: "completion_wait_times_out", run: SchedTimeCases.completionWaitTimesOut),
      KernelTestCase(name: "equal_threads_take_turns", run: SchedTimeCases.equalThreadsTakeTurns),
      KernelTestCase(name: "mutex_contention_from_every_cpu", run: mutexContention),
    ])

  static var scheduler: Scheduler<X86_64Platform> { Threads.scheduler }

  /// How long a test waits for one thing a thread of another CPU does: generous, since
  /// under nested KVM on a loaded host a vCPU can go unscheduled for a second or more.
  static let bound: UInt64 = 5_000_000_000

  /// Ping-pong rounds between two CPUs; every one must arrive.
  static let pingPongRounds = 100_000

  /// What a test thread reports: where it ran, then it completes `done`.
  final class Report {
    let done = Completion<X86_64Platform>()
    let ranOn = Atomic<Int>(-1)
    let count = Atomic<Int>(0)
    /// Completed by the waiter that brings `count` to `expected`.
    let allIn = Completion<X86_64Platform>()
    var expected = 0
  }

  private static let recordCPU: CallFunction = { info in
    let report = Unmanaged<Report>.fromOpaque(info!).takeUnretainedValue()
    report.ranOn.store(PerCPU.currentCPU.rawValue, ordering: .relaxed)
    report.done.complete(in: scheduler)
  }

  /// A thread created for each online CPU runs there and nowhere else; its end is
  /// reclaimed.
  static func threadsRunOnTheirCPU() -> TestResult {
    for cpu in CPUs.online {
      let report = Report()
      let thread = Threads.create(
        ThreadName("sched-test", cpu.rawValue), on: cpu, function: recordCPU,
        argument: Unmanaged.passUnretained(report).toOpaque())
      Threads.start(thread)
      guard report.done.wait(in: scheduler, timeoutNanoseconds: bound) else {
        return .fail("CPU \(X86_64Platform.currentCPU) waited 5 s for the thread on CPU \(cpu) to run")
      }
      let ran = report.ranOn.load(ordering: .relaxed)
      guard ran == cpu.rawValue else { return .fail("thread for CPU \(cpu) ran on CPU \(ran)") }
    }
    return .pass
  }

  /// The partner's side of the ping-pong: wait for a ping, answer with a pong.
  final class PingPong {
    let ping = Completion<X86_64Platform>()
    let pong = Completion<X86_64Platform>()
    /// Set before the last ping: the partner ends instead of answering.
    let over = Atomic<Bool>(false)
  }

  private static let answer: CallFunction = { info in
    let game = Unmanaged<PingPong>.fromOpaque(info!).takeUnretainedValue()
    while true {
      game.ping.wait(in: scheduler)
      // Acquire pairs with the release before the last ping.
      if game.over.load(ordering: .acquiring) { return }
      game.pong.complete(in: scheduler)
    }
  }

  /// Wall-clock cap of the ping-pong: under nested KVM a round takes milliseconds.
  static let pingPongCap: UInt64 = 20_000_000_000

  /// `pingPongRounds` completions each way between CPU 0 and the last online CPU, or
  /// as many as fit in `pingPongCap` (said in the diagnostic): none is lost, since a
  /// lost wake-up on either side leaves the next round unanswered for `bound`.
  static func completionPingPong() -> TestResult {
    let partner =
      CPUs.online.reversed().first { $0 != X86_64Platform.currentCPU } ?? X86_64Platform.currentCPU
    let game = PingPong()
    let thread = Threads.create(
      ThreadName("pong", partner.rawValue), on: partner, function: answer,
      argument: Unmanaged.passUnretained(game).toOpaque())
    Threads.start(thread)
    let start = Clock.nanoseconds()
    var rounds = 0
    while rounds < pingPongRounds && Clock.nanoseconds() - start < pingPongCap {
      game.ping.complete(in: scheduler)
      // A lost wake-up on either side stops the game here; the partner is left asleep
      // (a failed test does not clean up after a lost wake-up).
      guard game.pong.wait(in: scheduler, timeoutNanoseconds: bound) else {
        return .fail(
          "round \(rounds): CPU \(X86_64Platform.currentCPU) waited 5 s for the pong from CPU \(partner)")
      }
      rounds += 1
    }
    let perRound = (Clock.nanoseconds() - start) / UInt64(rounds)
    game.over.store(true, ordering: .releasing)  // pairs with the partner's acquire
    game.ping.complete(in: scheduler)
    let capped: StaticString = rounds < pingPongRounds ? " (stopped at the 20 s cap)" : ""
    KTAP.diagnostic("\(rounds) rounds with CPU \(partner), \(perRound) ns per round trip\(capped)")
    return .pass
  }

  /// Shared by the mutex case's threads: a plain counter only the mutex protects.
  final class Contended {
    let mutex = Mutex<X86_64Platform>()
    var counter = 0
    static let increments = 1000
    var info: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
  }

  private static let addUnderMutex: CallFunction = { info in
    let shared = Unmanaged<Contended>.fromOpaque(info!).takeUnretainedValue()
    for step in 1...Contended.increments {
      shared.mutex.lock(in: scheduler)
      shared.counter += 1
      if step % 64 == 0 { scheduler.sleep(nanoseconds: 10_000) }  // sleep holding it: others queue
      shared.mutex.unlock(in: scheduler)
    }
  }

  /// Two threads on every online CPU add to a plain counter under one mutex: it comes
  /// out exact, and the mutex ends free.
  static func mutexContention() -> TestResult {
    let shared = Contended()
    let perCPU = 2
    let group = ThreadGroup(capacity: perCPU * CPUs.online.count)
    for cpu in CPUs.online {
      for index in 0..<perCPU {
        group.start(
          ThreadName("mutex-add", perCPU * cpu.rawValue + index), on: cpu, addUnderMutex, shared.info)
      }
    }
    if let late = group.wait(milliseconds: 30_000) { return .fail(late) }
    let expected = perCPU * CPUs.online.count * Contended.increments
    guard shared.counter == expected else { return .fail("counter \(shared.counter), expected \(expected)") }
    guard shared.mutex.owner == nil else { return .fail("the mutex is still held") }
    KTAP.diagnostic("\(perCPU * CPUs.online.count) threads, \(expected) increments under one mutex")
    return .pass
  }

  private static let waitThenCount: CallFunction = { info in
    let report = Unmanaged<Report>.fromOpaque(info!).takeUnretainedValue()
    report.done.wait(in: scheduler)
    // Release pairs with the acquire below: each count is in before the last one's.
    if report.count.wrappingAdd(1, ordering: .releasing).newValue == report.expected {
      report.allIn.complete(in: scheduler)
    }
  }

  /// Two waiters on every online CPU block on one completion; `completeAll` releases
  /// them all, and a later `wait` passes at once.
  static func completeAllWakesEveryone() -> TestResult {
    let report = Report()
    let waiters = 2 * CPUs.online.count
    report.expected = waiters
    for cpu in CPUs.online {
      for index in 0..<2 {
        let thread = Threads.create(
          ThreadName("waiter", 2 * cpu.rawValue + index), on: cpu, function: waitThenCount,
          argument: Unmanaged.passUnretained(report).toOpaque())
        Threads.start(thread)
      }
    }
    report.done.completeAll(in: scheduler)
    // A sleep, not a spin: the waiters on this CPU need it to run.
    let start = Clock.nanoseconds()
    guard report.allIn.wait(in: scheduler, timeoutNanoseconds: 2 * bound) else {
      return .fail("\(report.count.load(ordering: .acquiring)) of \(waiters) waiters woke within 10 s")
    }
    KTAP.diagnostic("\(waiters) waiters woke within \((Clock.nanoseconds() - start) / 1000) us")
    let woke = report.count.load(ordering: .acquiring)
    // Must pass at once: the completion is done for good.
    guard report.done.wait(in: scheduler, timeoutNanoseconds: bound) else {
      return .fail("a wait after complete_all() slept")
    }
    return woke == waiters ? .pass : .fail("\(woke) of \(waiters) waiters woke")
  }
}
