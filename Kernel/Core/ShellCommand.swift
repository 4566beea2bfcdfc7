/// A serial-shell command line, parsed and checked before anything runs: the command,
/// and its argument within range, or the message that says what is wrong with it.
public enum ShellCommand: Equatable, Sendable {
  /// An empty line (or only blanks): nothing to do.
  case empty
  case help
  case cpus
  /// `call CPU`: a waiting cross-call to the CPU, and its round trip.
  case call(CPUIndex)
  /// `stop`: one stop_machine across the online CPUs, with each CPU's state times.
  case stop
  case offline(CPUIndex)
  case online(CPUIndex)
  case bench
  /// `torture SECONDS`: the cross-call torture for that long.
  case torture(seconds: Int)
  case sendstop
  case panic
  case exit

  /// How long `torture` may be asked to run.
  public static let tortureSeconds = 1...600

  /// Every command, its argument, and what it does: the `help` text, one line each.
  public static let usage: [(command: StaticString, summary: StaticString)] = [
    ("help", "this list"),
    ("cpus", "every CPU: APIC ID, lifecycle state, active, its stopper, interrupts taken"),
    ("call CPU", "a cross-call to CPU (smp_call_function_single, waiting) and its round trip"),
    ("stop", "one stop_machine on every online CPU, with when each CPU entered each state"),
    ("offline CPU", "take CPU offline (cpu_down: a stop_machine, then INIT)"),
    ("online CPU", "bring CPU back (cpu_up: INIT-SIPI-SIPI)"),
    ("bench", "a short benchmark: cross-call and stop_machine round trips, median and p99"),
    ("torture SECONDS", "random cross-calls from every CPU, each checked, for 1-600 s"),
    ("sendstop", "smp_send_stop: stops every other CPU for good, then leaves QEMU"),
    ("panic", "a deliberate kernel panic: the report, then QEMU exits with status 37"),
    ("exit", "leave QEMU"),
  ]

  /// Parses `line`: words separated by blanks, the command first.
  /// - Parameters:
  ///   - line: The characters of the line.
  ///   - cpuCount: How many CPUs there are (possible CPUs): CPU arguments are below it.
  /// - Returns: The command.
  /// - Throws: What is wrong with the line, for the user.
  public static func parse(
    _ line: UnsafeBufferPointer<UInt8>, cpuCount: Int
  ) throws(ShellCommandError) -> ShellCommand {
    let words = Words(line)
    guard let name = words.first else { return .empty }
    let commands: [(StaticString, ShellCommand?)] = [
      ("help", .help), ("cpus", .cpus), ("stop", .stop), ("bench", .bench), ("sendstop", .sendstop),
      ("panic", .panic), ("exit", .exit), ("call", nil), ("offline", nil), ("online", nil), ("torture", nil),
    ]
    guard let (spelling, simple) = commands.first(where: { Words.equal(name, $0.0) }) else {
      throw ShellCommandError("unknown command '\(bytes: name)'; type help")
    }
    let arguments = words.count - 1
    if let simple {
      guard arguments == 0 else { throw ShellCommandError("\(spelling) takes no argument") }
      return simple
    }
    let isTorture = Words.equal(name, "torture")
    let what: StaticString = isTorture ? "a number of seconds" : "a CPU number"
    let placeholder: StaticString = isTorture ? "SECONDS" : "CPU"
    guard arguments == 1 else {
      throw arguments == 0
        ? ShellCommandError("\(spelling) needs \(what): \(spelling) \(placeholder)")
        : ShellCommandError("\(spelling) takes one argument")
    }
    let argument = words.second
    guard let number = Number(argument) else { throw ShellCommandError("'\(bytes: argument)' is not \(what)") }
    if isTorture {
      guard case .value(let seconds) = number, tortureSeconds.contains(seconds) else {
        throw ShellCommandError("torture takes \(tortureSeconds.lowerBound) to \(tortureSeconds.upperBound) seconds")
      }
      return .torture(seconds: seconds)
    }
    guard case .value(let index) = number, index < cpuCount else {
      throw ShellCommandError("CPU \(bytes: argument) does not exist (CPUs are 0-\(cpuCount - 1))")
    }
    let cpu = CPUIndex(index)
    if Words.equal(name, "call") { return .call(cpu) }
    return Words.equal(name, "offline") ? .offline(cpu) : .online(cpu)
  }
}

/// What is wrong with a shell command line: the message the shell prints after
/// `error: `.
public struct ShellCommandError: Error {
  public let message: LogLine

  init(_ message: LogLine) {
    self.message = message
  }
}

/// A word of decimal digits, read without overflow: no CPU number or duration has
/// more than 9 significant digits.
private enum Number {
  case value(Int)
  case tooLarge

  /// Nil when `word` is not all decimal digits (a sign, `0x`, letters).
  init?(_ word: UnsafeBufferPointer<UInt8>) {
    guard !word.isEmpty, word.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
    let significant = word.drop { $0 == 0x30 }
    guard significant.count <= 9 else {
      self = .tooLarge
      return
    }
    self = .value(significant.reduce(0) { $0 * 10 + Int($1 - 0x30) })
  }
}

/// The first two blank-separated words of a line, and how many there are.
private struct Words {
  let first: UnsafeBufferPointer<UInt8>?
  let second: UnsafeBufferPointer<UInt8>
  let count: Int

  init(_ line: UnsafeBufferPointer<UInt8>) {
    var found: [Range<Int>] = []
    var index = 0
    while index < line.count {
      while index < line.count && Self.isBlank(line[index]) { index += 1 }
      let start = index
      while index < line.count && !Self.isBlank(line[index]) { index += 1 }
      if index > start { found.append(start..<index) }
    }
    first = found.first.map { UnsafeBufferPointer(rebasing: line[$0]) }
    second = found.count > 1 ? UnsafeBufferPointer(rebasing: line[found[1]]) : UnsafeBufferPointer(start: nil, count: 0)
    count = found.count
  }

  static func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

  /// Whether `word` spells `name` exactly.
  static func equal(_ word: UnsafeBufferPointer<UInt8>, _ name: StaticString) -> Bool {
    name.withUTF8Buffer { $0.elementsEqual(word) }
  }
}
