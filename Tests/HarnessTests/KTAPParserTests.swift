import HarnessKit
import Testing

// The KTAP parser: nesting by indentation, directives, plans against results.

@Suite("KTAP parser")
struct KTAPParserTests {
  private func parse(_ text: String) -> KTAPLog {
    SerialLog(text).ktap
  }

  @Test func nestedSuitesAllPassing() {
    let log = parse(
      CannedLog.boot4 + """
        KTAP version 1
        1..1
            KTAP version 1
            # Subtest: ipi
            1..1
            ok 1 ping
        ok 1 ipi

        """)
    #expect(log.documents.count == 2)
    let boot = log.documents[0].results[0]
    #expect(boot.name == "boot" && boot.isOK && boot.number == 1)
    #expect(boot.subtest?.name == "boot")
    #expect(boot.subtest?.plan == 3)
    #expect(boot.subtest?.results.map(\.name) == ["cpus_online", "apic_ids_unique", "x2apic"])
    #expect(log.suiteNames == ["boot", "ipi"])
    #expect(log.problems.isEmpty)
  }

  @Test func skipAndTodoAreDirectivesAndNotFailures() {
    let log = parse(
      """
      KTAP version 1
      1..3
      ok 1 a # SKIP no x2APIC
      not ok 2 b # TODO later
      ok 3 c # not a directive
      """)
    let results = log.documents[0].results
    #expect(results[0].directive == "SKIP no x2APIC" && results[0].name == "a")
    #expect(results[1].directive == "TODO later" && !results[1].isFailure)
    #expect(results[2].name == "c # not a directive" && results[2].directive == nil)
    #expect(log.problems.isEmpty)
  }

  @Test func missingResultsBreakThePlan() {
    let log = parse(
      """
      KTAP version 1
      1..1
          KTAP version 1
          # Subtest: boot
          1..4
          ok 1 a
          ok 2 b
          ok 3 c
      ok 1 boot
      """)
    #expect(log.problems == ["boot: plan 1..4 but 3 results"])
  }

  @Test func notOkNamesTheCaseAndTheSuite() {
    let log = parse(CannedLog.failingCase)
    #expect(log.problems == ["boot.apic_ids_unique not ok", "boot not ok"])
  }

  @Test func outputEndingInsideASuiteIsReported() {
    let log = parse(
      """
      KTAP version 1
      1..2
          KTAP version 1
          # Subtest: stop
          1..2
          ok 1 one
      PANIC: CPU 1: exception 13 (#GP general protection) error 0x0
      """)
    #expect(
      log.problems == [
        "stop: plan 1..2 but 1 results", "stop: output ended inside it",
        "plan 1..2 but 0 results",
      ])
    #expect(log.suiteNames == ["stop"])
  }

  @Test func subtestLineBeforeVersionLineKeepsTheName() {
    let log = parse(
      """
      KTAP version 1
      1..1
          # Subtest: boot
          KTAP version 1
          1..1
          ok 1 a
      ok 1 boot
      """)
    #expect(log.documents[0].results[0].subtest?.name == "boot")
    #expect(log.problems.isEmpty)
  }

  @Test func tabsIndentAndOtherOutputIsIgnored() {
    let log = parse(
      "KTAP version 1\n1..1\n\tKTAP version 1\n\t# Subtest: t\nsmp: noise from CPU 3\n"
        + "\t1..1\n\tok 1 a\nok 1 t\n")
    #expect(log.documents[0].results[0].subtest?.results.count == 1)
    #expect(log.problems.isEmpty)
  }

  @Test func bailOutAndMissingPlanAreProblems() {
    let log = parse("KTAP version 1\nok 1 a\nBail out! no APIC\n")
    #expect(log.problems == ["no plan line", "bail out: no APIC"])
  }

  @Test func logWithoutKTAPIsEmpty() {
    let log = parse("ok 1 stray line before any version line\nhello\n")
    #expect(log.isEmpty && log.problems.isEmpty && log.suiteNames.isEmpty)
  }

  @Test(arguments: [
    ("ok 1", KTAPLine.result(isOK: true, number: 1, name: "", directive: nil)),
    ("not ok 12 a b", .result(isOK: false, number: 12, name: "a b", directive: nil)),
    ("1..0", .plan(0)),
    ("TAP version 14", .version),
    ("# Subtest: ipi", .subtest("ipi")),
  ])
  func classifiesLines(text: String, expected: KTAPLine) {
    #expect(KTAPLine.parse(Substring(text)) == expected)
  }

  @Test(arguments: ["okay", "ok x", "ok 1x", "1..x", "# diagnostic", "KTAP version x"])
  func rejectsNonKTAP(text: String) {
    #expect(KTAPLine.parse(Substring(text)) == nil)
  }
}
