// The `stoptrace` block the kernel prints after one stop_machine across every online CPU
// (`ktest=stop_trace`), read out of a serial log:
//
//   stoptrace begin stop=<generation> cpus=<CPUs in the trace> tsc_khz=<TSC kHz>
//   stoptrace cpu=<i> active=<0|1> called=<tsc> prepare=<tsc> disable_irq=<tsc> run=<tsc>
//             exit=<tsc> left=<tsc>                        (one line per CPU, as one line)
//   stoptrace end
//
// TSC values are absolute ticks, in decimal. Each line may also come as a KTAP diagnostic
// (`    # stoptrace ...`), which is how a suite's own output is meant to look. Lines of
// other CPUs may fall between the block's lines (the console keeps lines whole, not
// together); they are passed over.

/// One CPU's line of a stop trace: when it entered each state, in absolute TSC ticks.
public struct StopTraceCPU: Equatable, Sendable {
  /// The CPU's index (dense, 0..<n: not its APIC ID).
  public var cpu: Int
  /// Whether the CPU ran the stop function.
  public var isActive: Bool
  /// When the caller started the stop; the same on every line of one stop.
  public var called: UInt64
  /// Entry into PREPARE.
  public var prepare: UInt64
  /// Entry into DISABLE_IRQ.
  public var disableIRQ: UInt64
  /// Entry into RUN.
  public var run: UInt64
  /// Entry into EXIT.
  public var exit: UInt64
  /// When the CPU left the stop.
  public var left: UInt64

  /// Creates a line.
  public init(
    cpu: Int, isActive: Bool, called: UInt64, prepare: UInt64, disableIRQ: UInt64, run: UInt64,
    exit: UInt64, left: UInt64
  ) {
    self.cpu = cpu
    self.isActive = isActive
    self.called = called
    self.prepare = prepare
    self.disableIRQ = disableIRQ
    self.run = run
    self.exit = exit
    self.left = left
  }
}

/// A `stoptrace` line that does not read as the format says, or a block that is missing.
public struct StopTraceError: Error, Equatable, Sendable {
  /// What is wrong, quoting the line.
  public var message: String

  /// Creates an error saying `message`.
  public init(_ message: String) {
    self.message = message
  }
}

/// The whole `stoptrace begin ... end` block.
public struct StopTraceBlock: Equatable, Sendable {
  /// The stop's generation (`stop=`).
  public var generation: UInt64
  /// How many CPUs the begin line says took part (`cpus=`).
  public var cpuCount: Int
  /// TSC ticks per millisecond (`tsc_khz=`).
  public var tscKHz: UInt64
  /// The CPU lines, in the order printed; not checked against `cpuCount` here (the
  /// validator does that, on the converted trace).
  public var cpus: [StopTraceCPU]

  /// Creates a block.
  public init(generation: UInt64, cpuCount: Int, tscKHz: UInt64, cpus: [StopTraceCPU]) {
    self.generation = generation
    self.cpuCount = cpuCount
    self.tscKHz = tscKHz
    self.cpus = cpus
  }

  /// Reads the first block of `log`.
  /// - Throws: `StopTraceError` when there is no begin line, a `stoptrace` line is
  ///   malformed, or the block has no end line.
  public static func parse(_ log: SerialLog) throws(StopTraceError) -> StopTraceBlock {
    let lines = log.lines.compactMap(traceBody)
    guard let start = lines.firstIndex(where: { $0.hasPrefix("stoptrace begin ") }) else {
      throw StopTraceError("no 'stoptrace begin' line")
    }
    var block = try begin(lines[start])
    for line in lines[(start + 1)...] {
      if line == "stoptrace end" { return block }
      block.cpus.append(try cpu(line))
    }
    throw StopTraceError("no 'stoptrace end' line after \(block.cpus.count) CPU lines")
  }

  /// The `stoptrace ...` text of a log line, bare or as a KTAP diagnostic; nil for any
  /// other line. Trailing blanks are dropped.
  static func traceBody(_ line: Substring) -> Substring? {
    var body = line.drop { $0 == " " || $0 == "\t" }
    if body.hasPrefix("# ") { body = body.dropFirst(2) }
    guard body.hasPrefix("stoptrace ") else { return nil }
    while body.last == " " || body.last == "\t" { body = body.dropLast() }
    return body
  }

  private static func begin(_ line: Substring) throws(StopTraceError) -> StopTraceBlock {
    var cursor = TextCursor(line)
    guard cursor.skip("stoptrace begin stop="), let generation = cursor.unsigned(),
      cursor.skip(" cpus="), let count = cursor.unsigned(), cursor.skip(" tsc_khz="),
      let khz = cursor.unsigned(), khz > 0, cursor.isAtEnd
    else { throw StopTraceError("malformed line '\(line)'") }
    return StopTraceBlock(generation: generation, cpuCount: Int(count), tscKHz: khz, cpus: [])
  }

  private static func cpu(_ line: Substring) throws(StopTraceError) -> StopTraceCPU {
    var cursor = TextCursor(line)
    guard cursor.skip("stoptrace cpu="), let cpu = cursor.unsigned(), cursor.skip(" active="),
      let active = cursor.unsigned(), active <= 1, cursor.skip(" called="),
      let called = cursor.unsigned(), cursor.skip(" prepare="), let prepare = cursor.unsigned(),
      cursor.skip(" disable_irq="), let disable = cursor.unsigned(), cursor.skip(" run="),
      let run = cursor.unsigned(), cursor.skip(" exit="), let exit = cursor.unsigned(),
      cursor.skip(" left="), let left = cursor.unsigned(), cursor.isAtEnd
    else { throw StopTraceError("malformed line '\(line)'") }
    return StopTraceCPU(
      cpu: Int(cpu), isActive: active == 1, called: called, prepare: prepare, disableIRQ: disable,
      run: run, exit: exit, left: left)
  }
}

extension TextCursor {
  /// Consumes a run of ASCII decimal digits, without sign.
  /// - Returns: Its value, or nil (consuming nothing) when there are no digits, a sign, or
  ///   it overflows `Int`.
  mutating func unsigned() -> UInt64? {
    guard !rest.hasPrefix("-"), let value = integer() else { return nil }
    return UInt64(value)
  }
}
