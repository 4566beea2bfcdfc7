/// Test-only faults in AP start-up, chosen on the kernel command line. Each one makes a
/// slow path of bring-up happen on purpose so that the harness can boot it:
/// - `test_dead_ap=N`: CPU N's AP never answers (it halts before its set-up);
/// - `test_slow_ap=N:MS`: CPU N's AP spins MS milliseconds before it tries to go online,
///   on every start (the first attempt's and the retry's);
/// - `test_early_ap_fault=N`: CPU N's AP executes `ud2` as its first Swift instruction,
///   before it has found its slot or loaded its own descriptors.
/// Written by the boot CPU before the first INIT; read by APs after they start.
enum BootFaultInjection {
  nonisolated(unsafe) private static var deadCPU = CPUIndex.unknown
  nonisolated(unsafe) private static var slowCPU = CPUIndex.unknown
  nonisolated(unsafe) private static var slowMilliseconds: UInt64 = 0
  nonisolated(unsafe) private static var earlyFaultAPIC = APICID(UInt32.max)

  /// The command-line keys of these faults, for the parser.
  static var keys: [BootParameterKey] {
    // The boot CPU runs the code; only an AP can be told to misbehave.
    let ap = 1...(maxCPUs - 1)
    return [
      BootParameterKey("test_dead_ap", .integer, allowed: ap),
      BootParameterKey("test_slow_ap", .pair, allowed: ap, allowedSecond: 0...60_000),
      BootParameterKey("test_early_ap_fault", .integer, allowed: ap),
    ]
  }

  /// Reads the test parameters. Boot CPU, after `CPUs.setUp`, before any AP starts.
  static func configure(_ parameters: BootParameters) {
    deadCPU = CPUIndex(parameters.integer("test_dead_ap") ?? -1)
    if let (cpu, milliseconds) = parameters.pair("test_slow_ap") {
      (slowCPU, slowMilliseconds) = (CPUIndex(cpu), UInt64(milliseconds))
    }
    if let cpu = parameters.integer("test_early_ap_fault"), cpu < CPUs.possibleCount {
      earlyFaultAPIC = CPUs.apicID(of: CPUIndex(cpu))
    }
  }

  /// For an AP at its first Swift instruction: faults if it is the chosen one. Uses
  /// CPUID, not the APIC, which is not set up yet.
  static func faultIfChosenEarly() {
    guard earlyFaultAPIC.rawValue != UInt32.max, InitialAPICID.read() == earlyFaultAPIC else { return }
    CPUInstructions.invalidOpcode()
  }

  /// Whether CPU `cpu`'s AP plays dead.
  static func isDead(_ cpu: CPUIndex) -> Bool { cpu == deadCPU }

  /// For CPU `cpu`'s AP, just before it tries to go online: spins if it is the slow one.
  static func delayIfSlow(_ cpu: CPUIndex) {
    if cpu == slowCPU { Clock.delay(microseconds: slowMilliseconds * 1000) }
  }
}
