/// In-kernel test suites reporting KTAP version 1 over the serial console
/// (https://docs.kernel.org/dev-tools/ktap.html): a top-level plan of suites, each
/// suite a nested, indented KTAP document of its cases.

/// The result of one test case.
enum TestResult {
  case pass
  case fail(LogLine)
  case skip(LogLine)
}

/// One named check.
struct KernelTestCase {
  let name: StaticString
  let run: () -> TestResult
}

/// A named group of cases, selected with `ktest=name`.
struct KernelTestSuite {
  let name: StaticString
  let cases: [KernelTestCase]
}

/// Writes KTAP lines.
enum KTAP {
  static func header(plan: Int) {
    log("KTAP version 1")
    log("1..\(plan)")
  }

  /// Runs `suite` as subtest `number` and returns whether every case passed or skipped.
  static func run(_ suite: KernelTestSuite, number: Int) -> Bool {
    log("    KTAP version 1")
    log("    # Subtest: \(suite.name)")
    log("    1..\(suite.cases.count)")
    var allPassed = true
    for (index, testCase) in suite.cases.enumerated() {
      switch testCase.run() {
      case .pass:
        log("    ok \(index + 1) \(testCase.name)")
      case .skip(let reason):
        log("    ok \(index + 1) \(testCase.name) # SKIP \(line: reason)")
      case .fail(let reason):
        log("    # \(testCase.name): \(line: reason)")
        log("    not ok \(index + 1) \(testCase.name)")
        allPassed = false
      }
    }
    log("\(allPassed ? "ok" : "not ok") \(number) \(suite.name)")
    return allPassed
  }

  /// A diagnostic line inside a suite.
  static func diagnostic(_ line: LogLine) {
    log("    # \(line: line)")
  }
}
