import Foundation

// A tiny scanner for the fixed-format lines the kernel prints. Each read consumes input only
// when it succeeds, so parsers read as the line's grammar: literal, number, literal, ...

/// A read position in one line of text.
public struct TextCursor {
  /// The input not yet consumed.
  public private(set) var rest: Substring

  /// The most values `integerList()` expands a list to. A cpulist names CPUs or APIC IDs, a
  /// few hundred at most; a longer one is malformed rather than an allocation of gigabytes
  /// (the ktap fuzz target's `cpus=0-4000000000`).
  public static let maximumListCount = 1 << 16

  /// Creates a cursor at the start of `text`.
  public init(_ text: some StringProtocol) {
    rest = Substring(text)
  }

  /// Whether all input has been consumed.
  public var isAtEnd: Bool { rest.isEmpty }

  /// Consumes `literal` if the input starts with it.
  /// - Returns: Whether it was there.
  public mutating func skip(_ literal: String) -> Bool {
    guard rest.hasPrefix(literal) else { return false }
    rest = rest.dropFirst(literal.count)
    return true
  }

  /// Consumes a run of ASCII decimal digits, with an optional leading `-`.
  /// - Returns: Its value, or nil (consuming nothing) when there are no digits or it overflows.
  public mutating func integer() -> Int? {
    let negative = rest.hasPrefix("-")
    let body = negative ? rest.dropFirst() : rest
    let digits = body.prefix { $0.isASCII && $0.isNumber }
    guard !digits.isEmpty, let magnitude = Int(digits) else { return nil }
    rest = body.dropFirst(digits.count)
    return negative ? -magnitude : magnitude
  }

  /// Consumes input up to (not including) the first occurrence of `delimiter`, or to the end.
  /// - Returns: The consumed text.
  public mutating func upTo(_ delimiter: String) -> Substring {
    let end = rest.range(of: delimiter)?.lowerBound ?? rest.endIndex
    let taken = rest[..<end]
    rest = rest[end...]
    return taken
  }

  /// Consumes a Linux cpulist of non-negative integers: ranges and single values joined by
  /// commas, such as `0,1,3` or `0-2,4-6`; ranges are expanded.
  /// - Returns: The values, or nil (consuming nothing) when the list is empty, malformed, or
  ///   longer than `maximumListCount` once expanded.
  public mutating func integerList() -> [Int]? {
    var copy = self
    var values: [Int] = []
    repeat {
      guard let first = copy.integer(), first >= 0 else { return nil }
      var last = first
      if copy.skip("-") {
        guard let end = copy.integer(), end >= first else { return nil }
        last = end
      }
      // Checked before expanding; first >= 0, so last - first cannot overflow.
      guard last - first < Self.maximumListCount - values.count else { return nil }
      values.append(contentsOf: first...last)
    } while copy.skip(",")
    self = copy
    return values
  }

}
