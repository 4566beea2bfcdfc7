// A conversation with the kernel's serial shell (the kernel booted with `shell` on its
// command line): the lines to type, what each answer must and must not hold, and how the
// session ends. `ShellConversation` holds it over a channel; `ShellSession` over QEMU.

/// How a shell step ends.
public enum ShellEnding: Equatable, Sendable {
  /// The shell prints its prompt again; the answer is everything from the typed line to it.
  case prompt
  /// QEMU exits with the status of `outcome` (`exit` and `sendstop`: pass, status 33;
  /// `panic`: panic, status 37); the answer is everything from the typed line to the end.
  case exit(Outcome)
}

/// One line typed at the shell, what its answer must show, and how long it may take.
public struct ShellStep: Equatable, Sendable {
  /// The bytes to type (a carriage return is appended); may hold `"\u{7f}"` and the like.
  public var line: String
  /// Substrings the answer must each contain.
  public var expected: [String]
  /// Substrings the answer must not contain: `kernelVerdicts` always, and `PANIC` unless
  /// the step ends in a panic.
  public var forbidden: [String]

  /// How the kernel marks a result it checked and found wrong: a call that ran on the
  /// wrong CPU, a stop whose states came out of order (`WRONG`), a torture with errors
  /// (`FAILED`). No step may show one.
  public static let kernelVerdicts = ["WRONG", "FAILED"]
  /// How long typing the line and waiting for its ending may take.
  public var bound: Duration
  /// How the step ends.
  public var ending: ShellEnding

  /// The bound of a step that does not name one.
  public static let defaultBound: Duration = .seconds(10)

  /// Creates a step.
  /// - Parameters:
  ///   - line: What to type, without the carriage return.
  ///   - expect: Substrings the answer must contain.
  ///   - reject: Substrings it must not contain (`kernelVerdicts` are added, and `PANIC`
  ///     unless `ending` is a panic).
  ///   - bound: How long the step may take.
  ///   - ending: How it ends.
  public init(
    _ line: String, expect: [String] = [], reject: [String] = [],
    bound: Duration = ShellStep.defaultBound, ending: ShellEnding = .prompt
  ) {
    self.line = line
    self.expected = expect
    self.forbidden = reject + ShellStep.kernelVerdicts + (ending == .exit(.panic) ? [] : ["PANIC"])
    self.bound = bound
    self.ending = ending
  }

  /// A command that must succeed: its answer holds `expect` and no `error: ` line.
  public static func answer(
    _ line: String, _ expect: String..., bound: Duration = ShellStep.defaultBound
  ) -> ShellStep {
    ShellStep(line, expect: expect, reject: ["error: "], bound: bound)
  }

  /// A command that must be refused: its answer holds `error: ` and each of `expect`
  /// (usually the whole error line).
  public static func error(_ line: String, _ expect: String...) -> ShellStep {
    ShellStep(line, expect: ["error: "] + expect)
  }

  /// A command that ends QEMU with `outcome`; its answer (to the end of the console) holds
  /// `expect`.
  public static func leaving(
    _ line: String, _ outcome: Outcome, expect: [String], bound: Duration = .seconds(30)
  ) -> ShellStep {
    ShellStep(line, expect: expect, bound: bound, ending: .exit(outcome))
  }

  /// The step's line as failure reasons show it: control characters as `\x7f`, a line of
  /// more than 40 characters cut to its first 20 and its length, no line as `(empty line)`.
  public var name: String {
    guard !line.isEmpty else { return "(empty line)" }
    guard line.count > 40 else { return ShellScript.visible(line.utf8) }
    return ShellScript.visible(line.utf8.prefix(20)) + "... (\(line.count) characters)"
  }

  /// What `answer` lacks, or holds that it must not.
  /// - Returns: One reason per missing or forbidden substring, without the step's name.
  public func failures(inAnswer answer: String) -> [String] {
    expected.filter { !answer.contains($0) }.map { "answer lacks '\($0)'" }
      + forbidden.filter { answer.contains($0) }.map { "answer contains '\($0)'" }
  }
}

/// A whole conversation with the shell: the wait for the first prompt, then the steps in
/// order. A script ends by leaving QEMU (`exit`, `sendstop` or `panic`); one whose last
/// step ends in a prompt leaves QEMU running, and the harness stops it (a failure).
public struct ShellScript: Equatable, Sendable {
  /// The shell's prompt: these 10 bytes, with no newline after them.
  public static let prompt = "lockstep> "

  /// How long the boot may take up to the first prompt.
  public var bootBound: Duration
  /// The lines to type, in order.
  public var steps: [ShellStep]

  /// Creates a script.
  public init(bootBound: Duration = .seconds(60), steps: [ShellStep]) {
    self.bootBound = bootBound
    self.steps = steps
  }

  /// How the script expects QEMU to end: the outcome of its last step if that one leaves
  /// QEMU, else nil.
  public var outcome: Outcome? {
    guard case .exit(let outcome) = steps.last?.ending else { return nil }
    return outcome
  }

  /// Bytes as failure reasons show them: printable ASCII as itself, `\n`, `\r`, `\t`, and
  /// any other byte as `\xNN`.
  public static func visible<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
    var text = ""
    for byte in bytes {
      switch byte {
      case UInt8(ascii: "\n"): text += "\\n"
      case UInt8(ascii: "\r"): text += "\\r"
      case UInt8(ascii: "\t"): text += "\\t"
      case UInt8(ascii: "\\"): text += "\\\\"
      case 0x20..<0x7f: text.append(Character(Unicode.Scalar(byte)))
      default:
        let hex = String(byte, radix: 16)
        text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
      }
    }
    return text
  }
}
