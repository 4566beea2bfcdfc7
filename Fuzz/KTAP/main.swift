// Fuzz target ktap: the harness's reading of a serial log, `SerialLog(_:)` (lines, bring-up
// lines, panic lines and the KTAP tree by `KTAPParser`), over arbitrary bytes decoded as the
// harness decodes a captured log, invalid UTF-8 replaced.
//
// Properties checked besides "no crash":
// - no line keeps a line terminator (`\n` or `\r\n`);
// - the tree holds no more results, plans or bail-outs than the log has such lines, and
//   nests no deeper than the log is indented;
// - every failing or unfinished result, and every plan its results do not match, is among
//   the problems reported;
// - a classified line prints back as text that classifies the same.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKTAP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
  let log = SerialLog(text)
  var lines = LineCounts()
  for line in log.lines {
    require(!line.contains("\n") && !line.contains("\r\n"), "a line kept its terminator")
    lines.count(line)
  }
  var tree = TreeCounts()
  for document in log.ktap.documents {
    tree.count(document, depth: 0)
  }
  require(
    tree.numberedResults <= lines.results, "\(tree.numberedResults) results from \(lines.results) lines")
  require(tree.plans <= lines.plans, "\(tree.plans) plans from \(lines.plans) lines")
  require(tree.bailOuts <= lines.bailOuts, "\(tree.bailOuts) bail-outs from \(lines.bailOuts) lines")
  require(tree.depth <= lines.deepest + 1, "nested \(tree.depth) deep, indented \(lines.deepest)")
  require(log.ktap.problems.count >= tree.problems, "problems missing")
  return 0
}

/// How many lines of each KTAP kind the log has, and its deepest indentation.
struct LineCounts {
  var results = 0
  var plans = 0
  var bailOuts = 0
  var deepest = 0

  mutating func count(_ line: Substring) {
    let (depth, text) = KTAPParser.indentation(of: line)
    guard let parsed = KTAPLine.parse(text) else { return }
    deepest = max(deepest, depth)
    switch parsed {
    case .result: results += 1
    case .plan: plans += 1
    case .bailOut: bailOuts += 1
    case .version, .subtest: break
    }
    let printed = render(parsed)
    require(KTAPLine.parse(printed[...]) == parsed, "\(parsed) printed as \(printed) reads differently")
  }

  /// The line as the kernel would print it.
  func render(_ line: KTAPLine) -> String {
    switch line {
    case .version: return "KTAP version 1"
    case .plan(let count): return "1..\(count)"
    case .subtest(let name): return "# Subtest: \(name)"
    case .bailOut(let reason): return "Bail out! \(reason)"
    case .result(let isOK, let number, let name, let directive):
      let directiveText = directive.map { " # \($0)" } ?? ""
      return "\(isOK ? "ok" : "not ok") \(number) \(name)\(directiveText)"
    }
  }
}

/// What the parsed tree holds, and the least number of problems it must report.
struct TreeCounts {
  var numberedResults = 0
  var plans = 0
  var bailOuts = 0
  var depth = 0
  var problems = 0

  mutating func count(_ document: KTAPDocument, depth level: Int) {
    depth = max(depth, level + 1)
    if document.plan != nil { plans += 1 }
    if document.bailOut != nil { bailOuts += 1 }
    let numbered = document.results.filter { $0.number != nil }.count
    numberedResults += numbered
    if document.plan != numbered { problems += 1 }
    for result in document.results {
      if result.isFailure { problems += 1 }
      if let subtest = result.subtest { count(subtest, depth: level + 1) }
    }
  }
}
