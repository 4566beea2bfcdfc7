import Synchronization

/// `ktest=soak soak_seconds=N`: the cross-call torture and the stop torture (stop APIs
/// and CPU hotplug) in turn, round after round, for N seconds (1-86400, default 60), with
/// a progress line every `reportSeconds` and every error counted and reported.
///
/// A round is `callMilliseconds` of the `torture` workers (random single, many, all,
/// any and async cross-calls from two threads on every CPU, each call checked), then
/// `stopMilliseconds` of the `stop_torture` driver (every stop API, a cross-call, and
/// `cpu_down`/`cpu_up` from every CPU, each result judged against where its function
/// ran), then that torture's restore: every CPU back online, every stopper idle, one
/// last stop_machine checked from every CPU's timeline. The two are not mixed within a
/// round: the cross-call torture counts a refusal as an error, since its targets never
/// go offline, and hotplug would make them go. Every wait is bounded: a cross-call round
/// by `roundBoundMilliseconds`, a stop round by the driver's 20 s without any operation
/// ending. The soak ends early at the end of the first round with an error, so a fault
/// is reported with its round and seed rather than buried under later rounds.
///
/// `torture_seed=S` seeds it (default: the TSC); round r's choices follow S and r
/// (`roundSeed`), though where the calls land in time still varies from run to run.
enum SoakSuite {
  static let suite = KernelTestSuite(
    name: "soak", cases: [KernelTestCase(name: "cross_calls_stops_and_hotplug", run: run)])

  /// `soak_seconds=` when not given, and its bounds.
  static let defaultSeconds = 60
  static let allowedSeconds = 1...86_400

  /// The key, for `KernelTests.parameterKeys`: out-of-range values are reported by the
  /// command-line parser ("soak_seconds=0: out of range") and the default kept.
  static var parameterKey: BootParameterKey {
    BootParameterKey("soak_seconds", .integer, allowed: allowedSeconds)
  }

  /// A round's two halves. Cross-calls get four fifths of the time: they are the
  /// cheap operation (tens of thousands a second), while a stop round's fixed costs
  /// (its restore, a stop_machine over every CPU) need about a second to be a small part.
  static let callMilliseconds: UInt64 = 4000
  static let stopMilliseconds: UInt64 = 1000
  /// How often the progress line is printed, at most (it comes at a round's end).
  static let reportSeconds: UInt64 = 10
  /// How long CPU 0 waits for a cross-call round's threads past its end.
  static let roundBoundMilliseconds: UInt64 = 60_000

  static func run() -> TestResult {
    let online = CPUs.online
    guard online.count > 1 else { return .skip("one CPU online: nothing to stop across CPUs or take down") }
    let parameters = TortureSuite.parameters
    let seconds = UInt64(parameters?.integer("soak_seconds") ?? defaultSeconds)
    let seed = UInt64(parameters?.integer("torture_seed") ?? Int(CPUInstructions.readTSC() & 0xFFFF_FFFF))
    KTAP.diagnostic(
      "soak: \(seconds) s on \(online.count) CPUs, seed \(seed) (torture_seed=\(seed)); rounds of \(callMilliseconds) ms of cross-calls, then \(stopMilliseconds) ms of stops and hotplug"
    )
    let tally = StopTortureTally(seed: seed)
    let leakedBefore = StopTortureSuite.stoppers.statistics.leakedPreemption.load(ordering: .relaxed)
    var totals = SoakTotals()
    let start = Clock.nanoseconds()
    let end = start + seconds * 1_000_000_000
    var reported = start
    var failure: LogLine? = nil
    while failure == nil && Clock.nanoseconds() < end {
      totals.rounds += 1
      failure = round(totals.rounds, seed: seed, online: online, end: end, tally, &totals)
      if failure == nil && totals.errors > 0 {
        failure = "\(totals.errors) errors, the round's seed \(roundSeed(seed, totals.rounds))"
      }
      let now = Clock.nanoseconds()
      if now - reported >= reportSeconds * 1_000_000_000 {
        KTAP.diagnostic(totals.line("soak", seconds: (now - start) / 1_000_000_000))
        reported = now
      }
    }
    if failure != nil { _ = Unmanaged.passRetained(tally) }  // stuck operations may still count into it
    let leaked = StopTortureSuite.stoppers.statistics.leakedPreemption.load(ordering: .relaxed) - leakedBefore
    if leaked != 0 { tally.fail("\(leaked) stop functions left the preemption count changed") }
    totals.takeStops(from: tally)
    tally.printSummary()
    KTAP.diagnostic(totals.line("soak end", seconds: (Clock.nanoseconds() - start) / 1_000_000_000))
    if let failure { return .fail("round \(totals.rounds): \(line: failure) (torture_seed=\(seed))") }
    return totals.errors == 0 ? .pass : .fail("\(totals.errors) errors (torture_seed=\(seed))")
  }

  /// Round `number`'s seed: the soak's, moved on by the round (xorshift needs a
  /// non-zero state, which `TestRandom` and the workers see to).
  static func roundSeed(_ seed: UInt64, _ number: Int) -> UInt64 {
    seed ^ (UInt64(number) &* 0xD6E8_FEB8_6659_FD93)
  }

  /// One round, cut short at `end` (each half in proportion); adds its counts to `totals` and returns what
  /// stopped it, if anything did (the errors it counted are the caller's to judge).
  private static func round(
    _ number: Int, seed: UInt64, online: CPUSet, end: UInt64, _ tally: StopTortureTally,
    _ totals: inout SoakTotals
  ) -> LogLine? {
    let threads = TortureSuite.threadsPerCPU
    // A round cut short by `end` (the last one, or the only one of a soak shorter than
    // a round) keeps both halves in proportion: otherwise `soak_seconds=1` ran
    // cross-calls only and passed with no stop or hotplug at all.
    let begin = Clock.nanoseconds()
    let remaining = end > begin ? end - begin : 0
    let callNanoseconds = min(
      callMilliseconds * 1_000_000, remaining / (callMilliseconds + stopMilliseconds) * callMilliseconds)
    let state = TortureState(
      workers: threads * online.count, operationsPerWorker: Int.max, seed: roundSeed(seed, number),
      deadline: begin + callNanoseconds)
    if let late = TortureSuite.runWorkers(
      state, on: online, threadsPerCPU: threads, bound: roundBoundMilliseconds)
    {
      return "cross-call threads, bound \(roundBoundMilliseconds) ms past the round: \(line: late)"
    }
    totals.addCalls(state)
    let now = Clock.nanoseconds()
    let cap = min(stopMilliseconds, (end > now ? (end - now) / 1_000_000 : 0) + 1)
    switch StopTortureSuite.drive(Int.max, tally, cap: cap, seed: roundSeed(seed, number) ^ 1) {
    case .failure(let stuck):
      return stuck.report
    case .success:
      break
    }
    if let problem = StopTortureSuite.restore(online) {
      tally.fail(problem)
      return problem
    }
    totals.takeStops(from: tally)
    return nil
  }
}
