// Holds a `ShellScript`'s conversation over a byte channel: types each line slowly enough
// for the UART, finds the prompt after it (other CPUs' log lines may come before, inside
// or after the answer), and checks the answer. Every wait has a deadline; an expired one
// says what it waited for, how long, and the last bytes it saw. The channel is a socket
// to QEMU (`ShellSession`) or canned text in the host tests.

/// What a channel's wait for bytes brought.
public enum ShellChannelRead: Equatable, Sendable {
  /// Some bytes (at least one).
  case data([UInt8])
  /// The other side closed: QEMU exited.
  case closed
  /// Nothing arrived before the deadline.
  case timedOut
}

/// Both directions of a serial console.
public protocol ShellChannel {
  /// Sends one byte.
  /// - Returns: False if the other side is gone.
  mutating func send(_ byte: UInt8) -> Bool
  /// Waits for bytes, at most until `deadline`.
  mutating func receive(before deadline: ContinuousClock.Instant) -> ShellChannelRead
}

/// One conversation with the shell over `Channel`.
public struct ShellConversation<Channel: ShellChannel> {
  /// How long to wait for a typed byte's echo before typing the next. The shell echoes
  /// each byte as it takes it from the UART, so waiting for the echo keeps at most one
  /// byte in the 16-byte receive FIFO; a byte that echoes differently (or not at all)
  /// costs this much.
  public static var echoWait: Duration { .milliseconds(100) }

  /// How many of the last bytes an expired wait reports.
  public static var tailBytes: Int { 200 }

  private var channel: Channel
  /// Everything the console printed so far.
  public private(set) var received: [UInt8] = []
  /// Whether the channel has closed; nothing more will arrive.
  private var isClosed = false
  private let clock = ContinuousClock()
  private static var prompt: [UInt8] { Array(ShellScript.prompt.utf8) }

  /// Creates a conversation over `channel`.
  public init(channel: Channel) {
    self.channel = channel
  }

  /// Waits for the first prompt, then runs each step; stops at the first step whose
  /// ending never came (an expired wait, or QEMU exiting early).
  /// - Parameters:
  ///   - script: The script.
  ///   - ended: How QEMU ended, asked once the console has closed (it may block, bounded).
  /// - Returns: Every failure, each naming its step; none if the script held.
  public mutating func run(_ script: ShellScript, ended: () -> Termination) -> [String] {
    guard waitForPrompt(from: 0, until: clock.now + script.bootBound) != nil else {
      return [startFailure(script.bootBound, ended: ended)]
    }
    var failures: [String] = []
    for (index, step) in script.steps.enumerated() {
      let label = "step \(index + 1) '\(step.name)'"
      let (found, stop) = run(step, label: label, ended: ended)
      failures += found
      guard !stop else {
        let left = script.steps.count - index - 1
        if left > 0 { failures.append("\(left) later step(s) not run") }
        return failures
      }
    }
    return failures
  }

  /// Runs one step: types its line, then waits for its ending.
  /// - Returns: Its failures, and whether the conversation cannot go on.
  private mutating func run(
    _ step: ShellStep, label: String, ended: () -> Termination
  ) -> (failures: [String], stop: Bool) {
    let deadline = clock.now + step.bound
    // The answer starts where typing starts: a prompt before this point is an old one.
    let mark = received.count
    type(step.line, until: deadline)
    switch step.ending {
    case .prompt:
      return finishAtPrompt(step, label: label, mark: mark, until: deadline, ended: ended)
    case .exit(let outcome):
      guard waitForClose(until: deadline) else {
        return (["\(label): \(expiry("QEMU to exit", step.bound))"], true)
      }
      let answer = String(decoding: received[mark...], as: UTF8.self)
      var failures = step.failures(inAnswer: answer).map { "\(label): \($0)" }
      let termination = ended()
      if case .exited(let status) = termination, KernelExit(status: status).outcome == outcome {
        return (failures, true)
      }
      failures.append("\(label): QEMU ended with \(termination.summary), expected \(outcome.phrase)")
      return (failures, true)
    }
  }

  /// Waits for the prompt that ends a step and checks the answer before it.
  /// - Returns: The step's failures, and whether the conversation cannot go on.
  private mutating func finishAtPrompt(
    _ step: ShellStep, label: String, mark: Int, until deadline: ContinuousClock.Instant,
    ended: () -> Termination
  ) -> (failures: [String], stop: Bool) {
    guard let promptStart = waitForPrompt(from: mark, until: deadline) else {
      let failure =
        isClosed
        ? "QEMU exited before the prompt (\(ended().summary))" : expiry("the prompt", step.bound)
      return (["\(label): \(failure)"], true)
    }
    let answer = String(decoding: received[mark..<promptStart], as: UTF8.self)
    return (step.failures(inAnswer: answer).map { "\(label): \($0)" }, false)
  }

  /// Why the first prompt never came.
  private func startFailure(_ bound: Duration, ended: () -> Termination) -> String {
    isClosed
      ? "boot: QEMU exited before the first prompt (\(ended().summary))"
      : "boot: \(expiry("the first prompt", bound))"
  }

  /// Types `line` and a carriage return, one byte at a time, each followed by a wait for
  /// its echo (at most `echoWait`, and never past `deadline`). Stops early if the console
  /// closes.
  private mutating func type(_ line: String, until deadline: ContinuousClock.Instant) {
    for byte in Array(line.utf8) + [UInt8(ascii: "\r")] {
      guard !isClosed else { return }
      let before = received.count
      guard channel.send(byte) else {
        isClosed = true
        return
      }
      let echo = ShellConversation.echo(of: byte)
      let echoDeadline = min(deadline, clock.now + ShellConversation.echoWait)
      while !received[before...].contains(echo), receive(until: echoDeadline) {}
    }
  }

  /// The byte whose arrival shows that `byte` was taken: a backspace echoes as "\b \b",
  /// a carriage return as a newline, anything else as itself.
  private static func echo(of byte: UInt8) -> UInt8 {
    switch byte {
    case 0x7f, 0x08: 0x08
    case UInt8(ascii: "\r"): UInt8(ascii: "\n")
    default: byte
    }
  }

  /// Reads until the prompt appears at or after `start`.
  /// - Returns: Where it starts, or nil if `deadline` passed or the console closed first.
  private mutating func waitForPrompt(from start: Int, until deadline: ContinuousClock.Instant)
    -> Int?
  {
    let prompt = ShellConversation.prompt
    var searched = start
    while true {
      if let found = ShellConversation.find(prompt, in: received, from: searched) {
        return found
      }
      // A prompt cut across two reads starts at most prompt.count - 1 bytes from the end.
      searched = max(start, received.count - prompt.count + 1)
      guard receive(until: deadline) else { return nil }
    }
  }

  /// Reads until the console closes.
  /// - Returns: False if `deadline` passed first.
  private mutating func waitForClose(until deadline: ContinuousClock.Instant) -> Bool {
    while receive(until: deadline) {}
    return isClosed
  }

  /// Waits once for more bytes and keeps them.
  /// - Returns: True if bytes arrived; false if the wait expired or the console closed.
  private mutating func receive(until deadline: ContinuousClock.Instant) -> Bool {
    guard !isClosed else { return false }
    switch channel.receive(before: deadline) {
    case .data(let bytes):
      received += bytes
      return true
    case .closed:
      isClosed = true
      return false
    case .timedOut:
      return false
    }
  }

  /// An expired wait: what it waited for, how long, and the last bytes it saw.
  private func expiry(_ awaited: String, _ bound: Duration) -> String {
    let tail = ShellScript.visible(received.suffix(ShellConversation.tailBytes))
    return
      "waited \(bound.boundText) s for \(awaited); last \(ShellConversation.tailBytes) bytes: \"\(tail)\""
  }

  /// The first index at or after `start` where `needle` occurs in `haystack`.
  static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
    guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count
    else { return nil }
    return (start...(haystack.count - needle.count)).first { index in
      haystack[index..<(index + needle.count)].elementsEqual(needle)
    }
  }
}
