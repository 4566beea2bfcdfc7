// Reads KTAP version 1 out of a serial log. Nesting is by indentation: four spaces (or one
// tab) per level. Lines that are not KTAP (other kernel output, diagnostics) are skipped, so
// KTAP may be interleaved with the rest of the console.

/// One line of KTAP, classified.
public enum KTAPLine: Equatable, Sendable {
  /// `KTAP version N` (or `TAP version N`): a document starts.
  case version
  /// `1..N`.
  case plan(Int)
  /// `ok N name [# directive]` or `not ok N name [# directive]`.
  case result(isOK: Bool, number: Int, name: String, directive: String?)
  /// `# Subtest: name`.
  case subtest(String)
  /// `Bail out! reason`.
  case bailOut(String)

  /// Classifies one line with its indentation already removed.
  /// - Returns: The KTAP line, or nil for anything else (including `# diagnostics`).
  public static func parse(_ text: Substring) -> KTAPLine? {
    var cursor = TextCursor(text)
    if cursor.skip("KTAP version ") || cursor.skip("TAP version ") {
      return cursor.integer() != nil ? .version : nil
    }
    if cursor.skip("1..") {
      guard let count = cursor.integer(), count >= 0, cursor.isAtEnd else { return nil }
      return .plan(count)
    }
    if cursor.skip("# Subtest: ") { return .subtest(String(cursor.rest)) }
    if cursor.skip("Bail out!") { return .bailOut(String(cursor.rest.drop { $0 == " " })) }
    let isOK = cursor.skip("ok ")
    guard isOK || cursor.skip("not ok "), let number = cursor.integer() else { return nil }
    guard cursor.isAtEnd || cursor.skip(" ") else { return nil }
    let (name, directive) = splitDirective(cursor.rest)
    return .result(isOK: isOK, number: number, name: name, directive: directive)
  }

  /// Splits `name # SKIP reason` into the name and `SKIP reason`; only SKIP and TODO are
  /// directives, any other `#` stays part of the name.
  private static func splitDirective(_ text: Substring) -> (String, String?) {
    var cursor = TextCursor(text)
    let name = cursor.upTo(" # ")
    guard cursor.skip(" # ") else { return (String(text), nil) }
    let word = cursor.rest.prefix(4).uppercased()
    guard word == "SKIP" || word == "TODO" else { return (String(text), nil) }
    return (String(name), String(cursor.rest))
  }
}

/// Builds the KTAP tree of a serial log.
public struct KTAPParser {
  /// Open documents; the one at index d is at indentation level d.
  private var stack: [KTAPDocument] = []
  /// Finished top-level documents.
  private var documents: [KTAPDocument] = []

  /// Parses every KTAP line of `lines`.
  /// - Returns: The documents found; empty when the log has no KTAP.
  public static func parse(_ lines: [Substring]) -> KTAPLog {
    var parser = KTAPParser()
    for line in lines {
      let (depth, text) = indentation(of: line)
      if let parsed = KTAPLine.parse(text) { parser.feed(parsed, depth: depth) }
    }
    parser.unwind(to: 0)
    return KTAPLog(documents: parser.documents)
  }

  /// The nesting level of `line` and its text without indentation.
  static func indentation(of line: Substring) -> (Int, Substring) {
    var spaces = 0
    var index = line.startIndex
    while index < line.endIndex, line[index] == " " || line[index] == "\t" {
      spaces += line[index] == "\t" ? 4 : 1
      index = line.index(after: index)
    }
    return (spaces / 4, line[index...])
  }

  private mutating func feed(_ line: KTAPLine, depth: Int) {
    switch line {
    case .version:
      startDocument(depth: depth)
    case .subtest(let name):
      if openDocument(depth: depth) { stack[depth].name = name }
    case .plan(let count):
      if openDocument(depth: depth) { stack[depth].plan = count }
    case .bailOut(let reason):
      if openDocument(depth: depth) { stack[depth].bailOut = reason }
    case .result(let isOK, let number, let name, let directive):
      guard openDocument(depth: depth, keepingChild: true) else { return }
      let subtest = stack.count == depth + 2 ? stack.removeLast() : nil
      stack[depth].results.append(
        KTAPResult(
          number: number, name: name, isOK: isOK, directive: directive, subtest: subtest))
    }
  }

  /// A `KTAP version` line: a new document at `depth`, unless a `# Subtest:` line (the older
  /// order) already opened it.
  private mutating func startDocument(depth: Int) {
    if stack.count == depth + 1, stack[depth].isFresh { return }
    guard depth <= stack.count else { return }
    unwind(to: depth)
    stack.append(KTAPDocument())
  }

  /// Makes the document at `depth` the innermost open one (or its child, when
  /// `keepingChild`), creating it if its parent is open (a subtest with no version line).
  /// - Returns: False when there is no parent: the line is stray and must be ignored.
  private mutating func openDocument(depth: Int, keepingChild: Bool = false) -> Bool {
    if depth < stack.count {
      unwind(to: depth + (keepingChild ? 2 : 1))
      return true
    }
    guard depth == stack.count, depth > 0 else { return false }
    stack.append(KTAPDocument())
    return true
  }

  /// Closes documents until `count` remain open. A closed nested document had no result line
  /// (output moved on or ended), so it becomes an unfinished result of its parent.
  private mutating func unwind(to count: Int) {
    while stack.count > count {
      let document = stack.removeLast()
      if stack.isEmpty {
        documents.append(document)
      } else {
        stack[stack.count - 1].results.append(
          KTAPResult(number: nil, name: document.name ?? "?", isOK: false, subtest: document))
      }
    }
  }
}
