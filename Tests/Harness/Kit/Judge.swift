// Decides whether a boot met its configuration's expectations, and says why not.

/// The judgement of one boot.
public struct Verdict: Equatable, Sendable {
  /// Every expectation that did not hold, most important (how the boot ended) first.
  public var failures: [String]

  /// Creates a verdict from its failures; none means pass.
  public init(failures: [String]) {
    self.failures = failures
  }

  /// Whether every expectation held.
  public var passed: Bool { failures.isEmpty }

  /// The failures as one line.
  public var reason: String { failures.joined(separator: "; ") }
}

/// Checks a `BootRecord` against `Expectations`.
public enum Judge {
  /// Judges one boot.
  /// - Parameters:
  ///   - record: The finished boot.
  ///   - expectations: What it had to show.
  /// - Returns: The verdict, listing every expectation that failed.
  public static func judge(_ record: BootRecord, against expectations: Expectations) -> Verdict {
    let log = record.log
    var failures = endingFailures(record, expected: expectations.outcome)
    // Without a kernel run, every log check would fail too and bury QEMU's message.
    guard record.kernelRan else { return Verdict(failures: failures) }
    failures += record.shellFailures.map { "shell: \($0)" }
    failures += cpuFailures(log, expectations)
    failures += expectations.mustContain.filter { !log.text.contains($0) }
      .map { "log lacks '\($0)'" }
    failures += expectations.mustNotContain.filter { log.text.contains($0) }
      .map { "log contains '\($0)'" }
    let suites = log.ktap.suiteNames
    failures += expectations.ktapSuites.filter { !suites.contains($0) }
      .map { "KTAP suite '\($0)' missing" }
    failures += deadAPFailures(log, expectations.deadAP)
    failures += wholeLineFailures(log, expectations.wholeLines)
    if expectations.stopTrace {
      failures += StopTraceValidator.failures(inLog: log).map { "stop trace: \($0)" }
    }
    if let seconds = expectations.soakSeconds {
      failures += SoakJudge.failures(log.soakProgress, seconds: seconds).map { "soak: \($0)" }
    }
    return Verdict(failures: failures)
  }

  /// Counts the lines that are exactly `prefix` + `body`; anything but `count` fails.
  /// - Returns: One failure, or none.
  public static func wholeLineFailures(_ log: SerialLog, _ expected: WholeLines?) -> [String] {
    guard let expected else { return [] }
    guard let body = try? Regex("^(?:" + expected.body + ")$") else {
      return ["bad wholeLines pattern '\(expected.body)'"]
    }
    let whole = log.lines.filter { line in
      line.hasPrefix(expected.prefix)
        && line.dropFirst(expected.prefix.count).wholeMatch(of: body) != nil
    }
    guard whole.count != expected.count else { return [] }
    return ["\(whole.count) whole '\(expected.prefix)' lines, expected \(expected.count)"]
  }

  /// How QEMU ended against the expected outcome, then what that outcome requires of the log.
  static func endingFailures(_ record: BootRecord, expected: Outcome) -> [String] {
    switch record.termination {
    case .timedOut(let bound):
      return ["timeout after \(bound.boundText) s"]
    case .failedToStart(let message):
      return ["QEMU did not start: \(message)"]
    case .stopped:
      return ["QEMU stopped by the harness before it exited"]
    case .signaled(let signal):
      return [withDetail("QEMU killed by signal \(signal)", qemuMessage(in: record.qemuOutput))]
    case .exited(let status):
      let exit = KernelExit(status: status)
      guard exit.outcome == expected else {
        let message = "expected \(expected.phrase), got \(exit.summary)"
        return [withDetail(message, detail(of: exit, record))]
      }
      return outcomeFailures(record.log, outcome: expected)
    }
  }

  /// What the log must show once the exit status matched the expected outcome.
  private static func outcomeFailures(_ log: SerialLog, outcome: Outcome) -> [String] {
    switch outcome {
    case .pass:
      let problems = log.ktap.problems
      return problems.isEmpty ? [] : ["KTAP: " + problems.joined(separator: ", ")]
    case .panic:
      if log.panicLines.isEmpty { return ["no PANIC: report"] }
      return log.hasCompletePanicReport ? [] : ["PANIC: report lacks 'PANIC: end of report'"]
    case .testsFail, .tripleFault:
      return []
    }
  }

  /// The evidence behind an unexpected exit: QEMU's message, the panic line, or failing tests.
  private static func detail(of exit: KernelExit, _ record: BootRecord) -> String? {
    switch exit {
    case .qemuError:
      return qemuMessage(in: record.qemuOutput)
    case .panicked:
      return record.log.panicLines.first.map(String.init)
    case .testsFailed:
      let problems = record.log.ktap.problems
      return problems.isEmpty ? nil : problems.joined(separator: ", ")
    case .passed, .tripleFault:
      return nil
    }
  }

  private static func withDetail(_ text: String, _ detail: String?) -> String {
    guard let detail else { return text }
    return "\(text): \(detail)"
  }

  /// QEMU's message: its first line that is not a warning or a note, else its first line.
  /// (A console socket's `info: QEMU waiting for connection` comes before any error.)
  static func qemuMessage(in output: String) -> String? {
    let lines = output.split(whereSeparator: \.isNewline)
    let message = lines.first { !$0.contains("warning:") && !$0.contains(": info: ") }
    return (message ?? lines.first).map(String.init)
  }

  /// The `smp: online` lists and the `Brought up N CPUs` count.
  static func cpuFailures(_ log: SerialLog, _ expectations: Expectations) -> [String] {
    let cpus = expectations.onlineCPUs
    let apics = expectations.apicIDs
    guard let count = cpus?.count ?? apics?.count else { return [] }
    var failures: [String] = []
    if let online = log.online {
      if let cpus, online.cpus != cpus {
        failures.append("online cpus=\(list(online.cpus)), expected \(list(cpus))")
      }
      if let apics, online.apicIDs != apics {
        failures.append("online apic=\(list(online.apicIDs)), expected \(list(apics))")
      }
    } else {
      failures.append("no 'smp: online' line")
    }
    if let broughtUp = log.broughtUp {
      if broughtUp != count { failures.append("Brought up \(broughtUp) CPUs, expected \(count)") }
    } else {
      failures.append("no 'Brought up N CPUs' line")
    }
    return failures
  }

  /// The dead AP's `did not come online` line: right APIC ID, given up on in time.
  static func deadAPFailures(_ log: SerialLog, _ expected: DeadAPExpectation?) -> [String] {
    guard let expected else { return [] }
    guard let report = log.deadAPs.first(where: { $0.cpu == expected.cpu }) else {
      return ["no 'did not come online' line for CPU \(expected.cpu)"]
    }
    var failures: [String] = []
    if report.apic != expected.apic {
      failures.append("dead CPU \(expected.cpu) has APIC \(report.apic), expected \(expected.apic)")
    }
    if report.milliseconds > expected.withinMs {
      failures.append(
        "CPU \(expected.cpu) given up after \(report.milliseconds) ms, "
          + "limit \(expected.withinMs) ms")
    }
    return failures
  }

  /// Values separated by commas, runs of three or more as `first-last`: `0-2,4-6`, `0,1,3`.
  static func list<Value: BinaryInteger>(_ values: [Value]) -> String {
    var parts: [String] = []
    var start = 0
    while start < values.count {
      var end = start
      while end + 1 < values.count, values[end + 1] == values[end] + 1 { end += 1 }
      if end - start >= 2 {
        parts.append("\(values[start])-\(values[end])")
      } else {
        parts += values[start...end].map { "\($0)" }
      }
      start = end + 1
    }
    return parts.joined(separator: ",")
  }
}

extension Outcome {
  /// The outcome as a phrase for failure reasons.
  public var phrase: String {
    switch self {
    case .pass: "pass"
    case .testsFail: "tests failing"
    case .panic: "a panic"
    case .tripleFault: "a triple fault"
    }
  }
}
