import Synchronization

/// The `sendstop` suite: `smp_send_stop` and the crash stop, one scenario per boot,
/// chosen with `sendstop=<scenario>` (a stop is final: the machine ends with it).
///
/// `ktest=sendstop sendstop=irqs_off` boots, runs the scenario, and the CPU that made
/// the stop checks what every CPU did, prints the suite's KTAP result and ends the
/// machine. Scenarios `boot_*` stop during the boot's bring-up (their KTAP comes from
/// there, before "Brought up"); `panic_ap` and `crash_during_crash` end in a panic
/// report, which the harness checks. The scenarios:
/// - `responsive`: every other CPU idle: stopped by the stop vector, no NMI;
/// - `busy`: every other CPU runs a thread with interrupts on: the same;
/// - `irqs_off`: one CPU spins with interrupts off: the vector's attempt times out and
///   the NMI stops it;
/// - `nmi_stuck`: one CPU spins inside its own NMI handler: every attempt bounded, the
///   failure names exactly that CPU, the caller goes on;
/// - `late_ack`: one CPU works 1.5 timeouts in its stop path before acknowledging: the
///   caller waits for it (through the retry);
/// - `two_callers`: CPUs 0 and 1 call at once: one proceeds, the other is stopped;
/// - `crash_during_crash`: a second CPU panics during a crash stop: it is stopped;
/// - `boot_<point>` and `up_<point>`: a stop begins while an AP starts, at boot or by
///   `cpu_up`, at `before_init`, `wait_sipi`, `trampoline` or `before_online`;
/// - `printer_midline`: the printer CPU is stopped mid-line: the stopping CPU's lines
///   still come out whole;
/// - `heap_lock`: a CPU is stopped holding the heap lock: the stop needs no allocation;
/// - `panic_ap`: an AP panics while the boot CPU runs cross-calls and stop_machine.
enum SendStopSuite {
  /// The scenario's name from `sendstop=`; empty if none.
  nonisolated(unsafe) static var scenario: [UInt8] = []

  static let suite = KernelTestSuite(
    name: "sendstop",
    cases: [KernelTestCase(name: "scenario") { run() }])

  /// The command line's keys of this suite.
  static var parameterKeys: [BootParameterKey] {
    [BootParameterKey("sendstop", .list), BootParameterKey("sendstop_hold_ms", .integer, allowed: 1...60_000)]
  }

  /// Runs the scenario named on the command line; returns only to report a failure
  /// before the stop (a stop's result ends the machine from `finish`).
  static func run() -> TestResult {
    guard !scenario.isEmpty else { return .fail("no scenario: give sendstop=<name> (see SendStopSuite.swift)") }
    guard CPUs.online.count >= 2 else { return .skip("one CPU online: nothing to stop") }
    guard SMPStop.shared?.isInProgress == false else { return .fail("a stop is already in progress") }
    for entry in SendStopScenarios.runtime where BootParameters.equals(scenario, entry.name) {
      return entry.run()
    }
    for entry in SendStopBringUp.bootPoints where BootParameters.equals(scenario, entry.name) {
      return .fail("\(entry.name) stops during bring-up, but bring-up ended without the stop")
    }
    return .fail("no scenario named '\(bytes: scenario)'")
  }

  // MARK: Ending the machine

  /// Whether the suite's KTAP header is out yet: `KernelTests.run` prints it, except
  /// for a stop during bring-up.
  nonisolated(unsafe) static var headerPrinted = false

  /// Prints the scenario's result as the suite's only case and ends the machine. Any
  /// CPU: the one that made the stop. Never allocates.
  static func finish(_ result: TestResult) -> Never {
    if !headerPrinted {
      log("KTAP version 1")
      log("1..1")
      log("    KTAP version 1")
      log("    # Subtest: sendstop")
      log("    1..1")
    }
    let passed: Bool
    switch result {
    case .pass:
      log("    ok 1 scenario")
      passed = true
    case .skip(let reason):
      log("    ok 1 scenario # SKIP \(line: reason)")
      passed = true
    case .fail(let reason):
      log("    # scenario: \(line: reason)")
      log("    not ok 1 scenario")
      passed = false
    }
    log("\(passed ? "ok" : "not ok") 1 sendstop")
    DebugExit.exit(passed ? .passed : .testsFailed)
  }

  // MARK: Checking a stop

  /// What a scenario expects of its stop.
  struct Expectation {
    /// CPUs that must be reported not stopped (and no others).
    var failed = CPUSet()
    /// CPUs that must have been sent an NMI; with `onlyThoseNMI`, no others may.
    var nmi = CPUSet()
    var onlyThoseNMI = false
    /// Attempts the stop must have made (nil: any).
    var attempts: Int? = nil
    /// One CPU that must have acknowledged with `itsMechanism`.
    var cpu = CPUIndex.unknown
    var itsMechanism = StopMechanism.none
    /// The mechanism every other running CPU must have acknowledged with (nil: any).
    var others: StopMechanism? = nil
  }

  /// Checks `outcome` on the calling CPU: every other CPU stopped (acknowledged, or
  /// known never to run again), none online, and `expectation`. Prints each CPU's
  /// mechanism and time as diagnostics.
  static func check(_ outcome: SendStopOutcome?, _ expectation: Expectation) -> TestResult {
    guard let outcome, let stop = SMPStop.shared else { return .fail("the stop returned no outcome") }
    var line: LogLine = "stop by CPU "
    line.append(decimal: outcome.caller.rawValue)
    line.append(" in ")
    line.append(decimal: Int(outcome.nanoseconds / 1000))
    line.append(" us, ")
    line.append(decimal: outcome.attempts)
    line.append(" attempt(s); running ")
    line.append(cpuList: outcome.running.lazy.map { $0.rawValue })
    line.append("; starting ")
    line.append(cpuList: outcome.starting.lazy.map { $0.rawValue })
    line.append("; NMI ")
    line.append(cpuList: outcome.sentNMI.lazy.map { $0.rawValue })
    line.append("; failed ")
    line.append(cpuList: outcome.failed.lazy.map { $0.rawValue })
    KTAP.diagnostic(line)
    for index in 0..<CPUs.possibleCount where index != outcome.caller.rawValue {
      let cpu = CPUIndex(index)
      let (mechanism, at) = stop.acknowledgement(of: cpu)
      // A CPU that stopped itself before the stop looked at it is in neither set.
      guard outcome.running.contains(cpu) || outcome.starting.contains(cpu) || mechanism != .none else { continue }
      let after = at > outcome.startNanoseconds ? (at - outcome.startNanoseconds) / 1000 : 0
      KTAP.diagnostic(
        "CPU \(cpu): \(mechanism.name) after \(after) us, state \(Int(CPUs.state(of: cpu).rawValue))")
    }
    if outcome.failed != expectation.failed {
      return .fail("failed CPUs differ from the expected \(cpuList: expectation.failed)")
    }
    if outcome.sentNMI.intersection(expectation.nmi) != expectation.nmi {
      return .fail("the stop did not send NMI to every CPU expected: \(cpuList: expectation.nmi)")
    }
    if expectation.onlyThoseNMI && outcome.sentNMI != expectation.nmi {
      return .fail("the stop sent NMI to CPUs not expected (expected: \(cpuList: expectation.nmi))")
    }
    if let attempts = expectation.attempts, outcome.attempts != attempts {
      return .fail("\(outcome.attempts) attempt(s), expected \(attempts)")
    }
    for cpu in outcome.running where !outcome.failed.contains(cpu) {
      let found = stop.acknowledgement(of: cpu).mechanism
      let wanted = cpu == expectation.cpu ? expectation.itsMechanism : expectation.others
      if let wanted, found != wanted {
        return .fail("CPU \(cpu) acknowledged \(found.name), expected \(wanted.name)")
      }
    }
    if expectation.cpu.isKnown && stop.acknowledgement(of: expectation.cpu).mechanism != expectation.itsMechanism {
      return .fail("CPU \(expectation.cpu) acknowledged \(stop.acknowledgement(of: expectation.cpu).mechanism.name), expected \(expectation.itsMechanism.name)")
    }
    for index in 0..<CPUs.possibleCount where index != outcome.caller.rawValue {
      let cpu = CPUIndex(index)
      if expectation.failed.contains(cpu) { continue }  // it was not stopped: as it was
      let state = CPUs.state(of: cpu)
      if state == .online || state == .starting || state == .retrying || state == .dying {
        return .fail("CPU \(cpu) is in state \(Int(state.rawValue)) after the stop")
      }
      if outcome.running.contains(cpu) && !outcome.failed.contains(cpu) && state != .stopped && state != .dead {
        return .fail("CPU \(cpu) was running and is not stopped (state \(Int(state.rawValue)))")
      }
    }
    return .pass
  }

  /// Stops the others from here, checks, and ends the machine. Interrupts off.
  static func stopCheckAndFinish(_ expectation: Expectation) -> Never {
    let outcome = SMPStop.stopOtherCPUs()
    finish(check(outcome, expectation))
  }
}

extension LogLine.Interpolation {
  /// A CPU set in cpulist form ("1-3,5"), "none" when empty.
  mutating func appendInterpolation(cpuList set: CPUSet) {
    var line = LogLine()
    if set.isEmpty { line.append("none") } else { line.append(cpuList: set.lazy.map { $0.rawValue }) }
    appendInterpolation(line: line)
  }
}
