/// The registry of in-kernel suites, and running the ones `ktest=` names.
enum KernelTests {
  /// Every suite, in one explicit list. Add a suite here to make `ktest=<name>` find it.
  static func all(_ context: TestContext) -> [KernelTestSuite] {
    [
      BootSuite.make(context),
      ConsoleSuite.suite,
      IPISuite.suite,
      TortureSuite.suite,
      SchedSuite.suite,
      StopSuite.suite,
      HotplugSuite.suite,
      StopTortureSuite.suite,
      StopTortureRegressions.suite,
      SoakSuite.suite,
      StopTraceSuite.suite,
      SendStopSuite.suite,
      FaultSuites.threadStackOverflow,
      FaultSuites.invalidOpcode,
      FaultSuites.pageFault,
      FaultSuites.tripleFault,
      FaultSuites.stackOverflow,
      FaultSuites.stopStall,
    ] + ProtectionFaultSuites.all
  }

  /// The command-line keys of the test runner and its suites.
  static var parameterKeys: [BootParameterKey] {
    [
      BootParameterKey("ktest", .list),  // suites to run, in order
      BootParameterKey("bench", .flag),  // run the benchmarks
      BootParameterKey("bench_boots", .integer),  // boots a benchmark run spans (harness)
      BootParameterKey("torture_ops", .integer),  // calls `torture` makes in all
      BootParameterKey("torture_seed", .integer),  // its random seed (default: the TSC)
      BootParameterKey("stop_runs", .integer, allowed: 1...1_000_000),  // stop_machine_lockstep's runs
      SoakSuite.parameterKey,  // soak_seconds: how long `soak` runs
    ] + SendStopSuite.parameterKeys
  }

  /// Runs the suites named on the command line in that order, then the benchmark if
  /// `bench` is given; returns the exit status for the harness.
  static func run(_ parameters: BootParameters, bringUp: APStartup.Outcome) -> DebugExit.Status {
    let context = TestContext(bringUp: bringUp)
    TortureSuite.parameters = parameters
    StopSuite.lockstepRuns = parameters.integer("stop_runs") ?? StopSuite.defaultLockstepRuns
    SendStopSuite.scenario = parameters.list("sendstop").first ?? []
    if let hold = parameters.integer("sendstop_hold_ms") { SendStopScenarios.holdNanoseconds = UInt64(hold) * 1_000_000 }
    if parameters.has("bench") { BootBenchmark.run(context) }
    let names = parameters.list("ktest")
    guard !names.isEmpty else { return .passed }
    let suites = all(context)
    var selected: [KernelTestSuite] = []
    var unknown = false
    for name in names {
      if let suite = suites.first(where: { BootParameters.equals(name, $0.name) }) {
        selected.append(suite)
      } else {
        log("ktest: no suite named '\(bytes: name)'")
        unknown = true
      }
    }
    KTAP.header(plan: selected.count)
    SendStopSuite.headerPrinted = true
    var passed = !unknown
    for (index, suite) in selected.enumerated() where !KTAP.run(suite, number: index + 1) {
      passed = false
    }
    return passed ? .passed : .testsFailed
  }
}

/// What tests may look at about the boot that ran before them.
struct TestContext {
  let bringUp: APStartup.Outcome
}
