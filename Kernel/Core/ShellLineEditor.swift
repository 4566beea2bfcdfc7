/// The serial shell's line editing, byte by byte: what a terminal sends in, what the
/// shell should echo back, and when a line is complete.
///
/// Enough for a terminal and for a script: printable ASCII is kept and echoed;
/// backspace (DEL, 0x7F, as most terminals send it, or BS, 0x08) takes back the last
/// character; CR or LF ends the line, and a CR LF pair ends only one; Ctrl-C drops the
/// line; escape sequences (arrow keys: ESC [ A) and other control or non-ASCII bytes are
/// swallowed, so they cannot put invisible text into a command. Characters past
/// `capacity` are echoed but not kept, and the line is then reported as too long rather
/// than run cut short. No history.
public struct ShellLineEditor: Sendable {
  /// The longest command line kept, in characters.
  public static let capacity = 120

  /// What the shell does after a byte.
  public enum Action: Equatable, Sendable {
    /// Nothing to show.
    case none
    /// Echo this character.
    case echo(UInt8)
    /// Take the last character back on the terminal (`"\b \b"`).
    case erase
    /// The line is complete (end it on the terminal, then run `text`, or reject it when
    /// `isTooLong`); the editor starts a new line on the next byte.
    case submit
    /// Ctrl-C: the line is dropped (show `^C` and a new prompt).
    case cancel
  }

  private var storage = InlineArray<120, UInt8>(repeating: 0)
  /// Characters typed on this line, those past `capacity` included.
  public private(set) var typed = 0
  private var escape = Escape.none
  private var afterCR = false
  private var complete = false

  private enum Escape: Sendable {
    case none
    /// ESC seen: the next byte says what kind of sequence.
    case started
    /// Inside `ESC [` (CSI) or `ESC O` (SS3): up to a final byte 0x40-0x7E.
    case sequence
  }

  public init() {}

  /// Whether more characters were typed than `capacity`.
  public var isTooLong: Bool { typed > Self.capacity }

  /// Calls `body` with the line's characters (at most `capacity`).
  public func withText<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    storage.span.withUnsafeBufferPointer { all in
      body(UnsafeBufferPointer(rebasing: all[0..<min(typed, Self.capacity)]))
    }
  }

  /// Takes one byte from the terminal and says what to show.
  public mutating func feed(_ byte: UInt8) -> Action {
    let followsCR = afterCR
    afterCR = false
    if followsCR && byte == 0x0A { return .none }  // the second half of CR LF
    if complete {
      complete = false
      typed = 0
    }
    switch escape {
    case .started:
      escape = byte == UInt8(ascii: "[") || byte == UInt8(ascii: "O") ? .sequence : .none
      return .none
    case .sequence:
      if (0x40...0x7E).contains(byte) { escape = .none }
      return .none
    case .none:
      break
    }
    switch byte {
    case 0x0D:  // CR
      afterCR = true
      complete = true
      return .submit
    case 0x0A:  // LF
      complete = true
      return .submit
    case 0x7F, 0x08:  // DEL, BS
      guard typed > 0 else { return .none }
      typed -= 1
      return .erase
    case 0x03:  // Ctrl-C
      complete = true
      return .cancel
    case 0x1B:  // ESC
      escape = .started
      return .none
    case 0x20...0x7E:
      if typed < Self.capacity { storage[typed] = byte }
      typed += 1
      return .echo(byte)
    default:
      return .none  // other control characters and non-ASCII bytes
    }
  }
}
