// The KTAP version 1 results of one boot, as a tree, and what is wrong with them.
// Format: https://docs.kernel.org/dev-tools/ktap.html

/// One KTAP document: a plan and its results, possibly nested under a parent's result.
public struct KTAPDocument: Equatable, Sendable {
  /// The `# Subtest:` name; nil for a top-level document or a subtest without one.
  public var name: String?
  /// N of the `1..N` plan line, nil if none was printed.
  public var plan: Int?
  /// The result lines, in order, each with the subtest it closes.
  public var results: [KTAPResult] = []
  /// The reason given on a `Bail out!` line.
  public var bailOut: String?

  /// Creates an empty document.
  public init() {}

  /// Whether nothing but (perhaps) a name has been seen yet.
  var isFresh: Bool { plan == nil && results.isEmpty && bailOut == nil }
}

/// One `ok` / `not ok` line, or a subtest whose output ended before its result line.
public struct KTAPResult: Equatable, Sendable {
  /// The test number; nil when output ended inside `subtest` before the result line.
  public var number: Int?
  /// The description after the number.
  public var name: String
  /// Whether the line said `ok`.
  public var isOK: Bool
  /// The `# SKIP ...` or `# TODO ...` directive, without the `#`.
  public var directive: String?
  /// The nested document this result closes.
  public var subtest: KTAPDocument?

  /// Creates a result.
  public init(
    number: Int?, name: String, isOK: Bool, directive: String? = nil,
    subtest: KTAPDocument? = nil
  ) {
    self.number = number
    self.name = name
    self.isOK = isOK
    self.directive = directive
    self.subtest = subtest
  }

  /// Whether this result counts as a failure: `not ok` without a SKIP or TODO directive, or
  /// a subtest that never finished.
  public var isFailure: Bool {
    guard number != nil else { return true }
    return !isOK && directive == nil
  }
}

/// All KTAP documents found in a serial log (normally one).
public struct KTAPLog: Equatable, Sendable {
  /// The top-level documents, in order.
  public var documents: [KTAPDocument]

  /// Creates a log from parsed documents.
  public init(documents: [KTAPDocument]) {
    self.documents = documents
  }

  /// Whether the log contained any KTAP at all.
  public var isEmpty: Bool { documents.isEmpty }

  /// The suites: the names of the top-level results and of the subtests they close.
  public var suiteNames: Set<String> {
    var names: Set<String> = []
    for result in documents.flatMap(\.results) {
      names.insert(result.name)
      if let subtest = result.subtest?.name { names.insert(subtest) }
    }
    return names
  }

  /// Every problem, innermost first: failing cases by path (`suite.case`), plans not matched
  /// by their results, subtests that never finished, bail-outs.
  public var problems: [String] {
    documents.flatMap { KTAPLog.problems(in: $0, path: "") }
  }

  private static func problems(in document: KTAPDocument, path: String) -> [String] {
    var found: [String] = []
    for result in document.results {
      let name = result.subtest?.name ?? result.name
      let childPath = path.isEmpty ? name : "\(path).\(name)"
      if let subtest = result.subtest {
        found += problems(in: subtest, path: childPath)
      }
      if result.number == nil {
        found.append("\(childPath): output ended inside it")
      } else if result.isFailure {
        found.append("\(childPath) not ok")
      }
    }
    let label = path.isEmpty ? "" : "\(path): "
    let count = document.results.filter { $0.number != nil }.count
    if let plan = document.plan, plan != count {
      found.append("\(label)plan 1..\(plan) but \(count) results")
    } else if document.plan == nil {
      found.append("\(label)no plan line")
    }
    if let reason = document.bailOut {
      found.append("\(label)bail out: \(reason)")
    }
    return found
  }
}
