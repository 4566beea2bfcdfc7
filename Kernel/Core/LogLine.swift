/// One line of log text in a fixed buffer, built without allocating.
///
/// `LogLine` is written with string interpolation, but its interpolation appends
/// `StaticString` pieces and formatted integers straight into an inline buffer:
/// `"CPU \(cpu) (APIC \(apic)) online"` creates no `String`, so it is safe in IRQ,
/// NMI and panic context. Text past `capacity` is dropped and the line ends in `...`.
public struct LogLine: ExpressibleByStringInterpolation, Sendable {
  /// The longest line kept, in bytes.
  public static let capacity = 200

  private var storage = InlineArray<200, UInt8>(repeating: 0)
  /// Bytes used.
  public private(set) var count = 0
  /// True when text was dropped because the buffer was full.
  public private(set) var isTruncated = false
  /// Whether the console ends the line with a newline. False for text that the next
  /// record continues on the same line: a prompt, or a character echoed as it is typed.
  public var endsLine = true

  /// An empty line.
  public init() {}

  /// A line holding `literal`.
  public init(stringLiteral literal: StaticString) {
    append(literal)
  }

  /// A line built by interpolation.
  public init(stringInterpolation: Interpolation) {
    self = stringInterpolation.line
  }

  /// Appends one byte, or marks the line truncated.
  public mutating func append(byte: UInt8) {
    guard count < Self.capacity else {
      isTruncated = true
      return
    }
    storage[count] = byte
    count += 1
  }

  /// Appends the bytes of `text`.
  public mutating func append(_ text: StaticString) {
    text.withUTF8Buffer { for byte in $0 { append(byte: byte) } }
  }

  /// Appends raw bytes (for example a command-line token).
  public mutating func append(bytes: some Sequence<UInt8>) {
    for byte in bytes { append(byte: byte) }
  }

  /// Appends `value` in decimal.
  public mutating func append(decimal value: Int) {
    if value < 0 {
      append(byte: UInt8(ascii: "-"))
      append(unsigned: UInt64(value.magnitude), radix: 10, minimumDigits: 1)
    } else {
      append(unsigned: UInt64(value), radix: 10, minimumDigits: 1)
    }
  }

  /// Appends `value` in base `radix` (10 or 16, lower case), zero-padded.
  public mutating func append(unsigned value: UInt64, radix: UInt64, minimumDigits: Int) {
    var digits = InlineArray<20, UInt8>(repeating: 0)
    var used = 0
    var rest = value
    repeat {
      let digit = UInt8(rest % radix)
      digits[used] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
      used += 1
      rest /= radix
    } while rest != 0
    for _ in used..<max(used, minimumDigits) { append(byte: UInt8(ascii: "0")) }
    for index in stride(from: used - 1, through: 0, by: -1) { append(byte: digits[index]) }
  }

  /// Calls `body` with the line's bytes, with `...` appended if it was truncated.
  public func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    var copy = self
    if isTruncated {
      copy.count = Self.capacity - 3
      for _ in 0..<3 { copy.storage[copy.count] = UInt8(ascii: "."); copy.count += 1 }
    }
    return copy.storage.span.withUnsafeBufferPointer { all in
      body(UnsafeBufferPointer(rebasing: all[0..<copy.count]))
    }
  }

  /// The interpolation that fills a `LogLine`.
  public struct Interpolation: StringInterpolationProtocol {
    var line = LogLine()

    public init(literalCapacity: Int, interpolationCount: Int) {}

    public mutating func appendLiteral(_ literal: StaticString) { line.append(literal) }
    public mutating func appendInterpolation(_ text: StaticString) { line.append(text) }
    public mutating func appendInterpolation(_ value: Int) { line.append(decimal: value) }
    /// A CPU number, or `?` for `CPUIndex.unknown`.
    public mutating func appendInterpolation(_ cpu: CPUIndex) {
      if cpu.isKnown { line.append(decimal: cpu.rawValue) } else { line.append("?") }
    }
    public mutating func appendInterpolation(_ value: UInt64) {
      line.append(unsigned: value, radix: 10, minimumDigits: 1)
    }
    public mutating func appendInterpolation(_ value: UInt32) {
      line.append(unsigned: UInt64(value), radix: 10, minimumDigits: 1)
    }
    public mutating func appendInterpolation(_ value: Bool) {
      line.append(value ? "true" : "false")
    }
    /// `\(hex: value)` writes `0x` and at least `digits` hexadecimal digits.
    public mutating func appendInterpolation(hex value: UInt64, digits: Int = 1) {
      line.append("0x")
      line.append(unsigned: value, radix: 16, minimumDigits: digits)
    }
    /// `\(bytes: token)` writes raw bytes, such as a command-line word.
    public mutating func appendInterpolation(bytes: some Sequence<UInt8>) {
      line.append(bytes: bytes)
    }
    /// `\(line: other)` writes another line's text.
    public mutating func appendInterpolation(line other: LogLine) {
      other.withBytes { line.append(bytes: $0) }
    }
  }
}
