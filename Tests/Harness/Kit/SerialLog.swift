// The kernel's serial console of one boot, split into lines and read for the lines the
// harness judges: CPU bring-up, dead APs, panic reports and KTAP.

/// The `smp: online cpus=0-1,3 apic=0-1,3` line: online logical CPUs and their APIC IDs,
/// each in Linux's cpulist form (ascending).
public struct OnlineCPUs: Equatable, Sendable {
  /// The online logical CPU numbers, as printed.
  public var cpus: [Int]
  /// Their APIC IDs, ascending.
  public var apicIDs: [UInt32]

  /// Creates the lists.
  public init(cpus: [Int], apicIDs: [UInt32]) {
    self.cpus = cpus
    self.apicIDs = apicIDs
  }

  /// Parses one log line.
  /// - Returns: The lists, or nil if the line is not a well-formed `smp: online` line.
  public static func parse(_ line: Substring) -> OnlineCPUs? {
    var cursor = TextCursor(line)
    guard cursor.skip("smp: online cpus="), let cpus = cursor.integerList(),
      cursor.skip(" apic="), let apics = cursor.integerList(),
      apics.allSatisfy({ $0 <= Int(UInt32.max) })
    else { return nil }
    return OnlineCPUs(cpus: cpus, apicIDs: apics.map { UInt32($0) })
  }
}

/// The line for an AP that never came online:
/// `smp: CPU 2 (APIC 2) did not come online after 2 attempts (412 ms since first INIT); ...`.
public struct DeadAPReport: Equatable, Sendable {
  /// The AP's logical CPU number.
  public var cpu: Int
  /// The AP's APIC ID.
  public var apic: UInt32
  /// How many INIT-SIPI-SIPI attempts were made.
  public var attempts: Int
  /// Milliseconds from the first INIT until the kernel gave up.
  public var milliseconds: Int

  /// Creates a report.
  public init(cpu: Int, apic: UInt32, attempts: Int, milliseconds: Int) {
    self.cpu = cpu
    self.apic = apic
    self.attempts = attempts
    self.milliseconds = milliseconds
  }

  /// Parses one log line.
  /// - Returns: The report, or nil if the line is not a well-formed dead-AP line.
  public static func parse(_ line: Substring) -> DeadAPReport? {
    var cursor = TextCursor(line)
    guard cursor.skip("smp: CPU "), let cpu = cursor.integer(), cursor.skip(" (APIC "),
      let apic = cursor.integer().flatMap(UInt32.init(exactly:)),
      cursor.skip(") did not come online after "), let attempts = cursor.integer(),
      cursor.skip(" attempt"), cursor.skip("s (") || cursor.skip(" ("),
      let milliseconds = cursor.integer(), cursor.skip(" ms")
    else { return nil }
    return DeadAPReport(cpu: cpu, apic: apic, attempts: attempts, milliseconds: milliseconds)
  }
}

/// One boot's serial log, with the lines the judge looks at already extracted.
public struct SerialLog: Sendable {
  /// The whole log, as captured.
  public let text: String
  /// The log's lines, without line terminators (`\n` or `\r\n`).
  public let lines: [Substring]
  /// N of the first `Brought up N CPUs` line.
  public let broughtUp: Int?
  /// The first `smp: online` line.
  public let online: OnlineCPUs?
  /// Every dead-AP line, in order.
  public let deadAPs: [DeadAPReport]
  /// Every line starting `PANIC:`, in order.
  public let panicLines: [Substring]
  /// The KTAP output.
  public let ktap: KTAPLog

  /// Splits and reads `text`.
  public init(_ text: String) {
    self.text = text
    var lines = text.split(
      omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }
    ).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
    if lines.last?.isEmpty == true { lines.removeLast() }
    self.lines = lines
    broughtUp = lines.lazy.compactMap(SerialLog.broughtUpCount).first
    online = lines.lazy.compactMap(OnlineCPUs.parse).first
    deadAPs = lines.compactMap(DeadAPReport.parse)
    panicLines = lines.filter { $0.hasPrefix("PANIC:") }
    ktap = KTAPParser.parse(lines)
  }

  /// Whether the log holds a panic report that reached `PANIC: end of report`.
  public var hasCompletePanicReport: Bool {
    panicLines.contains { $0.hasPrefix("PANIC: end of report") }
  }

  /// The last `count` lines (all of them if there are fewer).
  public func tail(_ count: Int) -> ArraySlice<Substring> {
    lines.suffix(count)
  }

  /// Parses `Brought up N CPUs` (or `CPU`) at the start of a line.
  /// - Returns: N, or nil for any other line.
  static func broughtUpCount(_ line: Substring) -> Int? {
    var cursor = TextCursor(line)
    guard cursor.skip("Brought up "), let count = cursor.integer(), cursor.skip(" CPU")
    else { return nil }
    return count
  }
}
