import Foundation
import HarnessKit
import Testing

// The judge against each kind of expectation, on canned logs that exited with status 33.

@Suite("Judge: expectations")
struct JudgeExpectationTests {
  @Test func onlineCPUsAndAPICIDsMustMatchExactly() {
    let expectations = Expectations(onlineCPUs: [0, 1], apicIDs: [0, 2])
    let verdict = Judge.judge(record(CannedLog.boot4), against: expectations)
    #expect(
      verdict.failures == [
        "online cpus=0-3, expected 0,1", "online apic=0-3, expected 0,2",
        "Brought up 4 CPUs, expected 2",
      ])
  }

  @Test func longCPUListsAreShownAsRanges() {
    let log = "Brought up 6 CPUs\nsmp: online cpus=0,1,2,3,4,5 apic=0,1,2,3,4,5\n"
    let expectations = Expectations(apicIDs: [0, 1, 2, 4, 5, 6, 9, 10])
    let verdict = Judge.judge(record(log), against: expectations)
    #expect(verdict.failures.first == "online apic=0-5, expected 0-2,4-6,9,10")
  }

  @Test func missingBringUpLinesAreFailures() {
    let verdict = Judge.judge(record("nothing\n"), against: Expectations(apicIDs: [0]))
    #expect(verdict.failures == ["no 'smp: online' line", "no 'Brought up N CPUs' line"])
  }

  @Test func broughtUpMustEqualTheOnlineCount() {
    let log = "Brought up 3 CPUs\nsmp: online cpus=0,1 apic=0,1\n"
    let verdict = Judge.judge(record(log), against: Expectations(onlineCPUs: [0, 1]))
    #expect(verdict.failures == ["Brought up 3 CPUs, expected 2"])
  }

  @Test func mustContainAndMustNotContain() {
    let expectations = Expectations(
      mustContain: ["cmdline: ktest=boot", "maxcpus=abc"], mustNotContain: ["SKIP", "WARN"])
    let verdict = Judge.judge(record(CannedLog.boot4), against: expectations)
    #expect(verdict.failures == ["log lacks 'maxcpus=abc'", "log contains 'SKIP'"])
  }

  @Test func expectedSuitesMustAppear() {
    let verdict = Judge.judge(
      record(CannedLog.boot4), against: Expectations(ktapSuites: ["boot", "ipi"]))
    #expect(verdict.failures == ["KTAP suite 'ipi' missing"])
  }

  @Test func deadAPWithinItsBoundPasses() {
    let config = Matrix.standard.first { $0.name == "dead-ap-2" }!
    let verdict = Judge.judge(record(CannedLog.deadAP), against: config.expectations)
    #expect(verdict.passed, "\(verdict.reason)")
  }

  @Test func deadAPTooSlowWrongAPICOrMissingFails() {
    let slow = DeadAPExpectation(cpu: 2, apic: 3, withinMs: 400)
    let verdict = Judge.judge(record(CannedLog.deadAP), against: Expectations(deadAP: slow))
    #expect(
      verdict.failures == [
        "dead CPU 2 has APIC 2, expected 3", "CPU 2 given up after 412 ms, limit 400 ms",
      ])
    let other = DeadAPExpectation(cpu: 1, apic: 1, withinMs: 1000)
    let missing = Judge.judge(record(CannedLog.deadAP), against: Expectations(deadAP: other))
    #expect(missing.failures == ["no 'did not come online' line for CPU 1"])
  }

  @Test func sparseAPICConfigPassesItsLog() {
    let config = Matrix.standard.first { $0.name == "smp-6-sparse" }!
    let log = CannedLog.boot4
      .replacingOccurrences(of: "Brought up 4", with: "Brought up 6")
      .replacingOccurrences(
        of: "cpus=0,1,2,3 apic=0,1,2,3", with: "cpus=0,1,2,3,4,5 apic=0,1,2,4,5,6")
    let verdict = Judge.judge(record(log), against: config.expectations)
    #expect(verdict.passed, "\(verdict.reason)")
  }

  /// Every boot-suite configuration needs the W+X walk's verdict: a boot that lacks
  /// it (or lists W+X mappings and panics) fails.
  @Test func bootSuiteConfigsRequireNoWXMappings() {
    let config = Matrix.standard.first { $0.name == "smp-4-pc" }!
    let log = CannedLog.boot4.replacingOccurrences(of: "W+X mappings: none\n", with: "")
    let verdict = Judge.judge(record(log), against: config.expectations)
    #expect(verdict.failures == ["log lacks 'W+X mappings: none'"])
  }

  @Test func reportShowsTheLogTailForFailuresOnly() {
    let pass = ResultFormat.report(
      name: "smp-4-pc", verdict: Verdict(failures: []), record: record(CannedLog.boot4))
    #expect(pass == "PASS  smp-4-pc  (1.2 s)\n")
    let log = (1...25).map { "line \($0)" }.joined(separator: "\n")
    let fail = ResultFormat.report(
      name: "x", verdict: Verdict(failures: ["a", "b"]), record: record(log))
    let lines = fail.split(separator: "\n")
    #expect(lines.first == "FAIL  x  (a; b)")
    #expect(lines.count == 21 && lines[1] == "    line 6" && lines.last == "    line 25")
    #expect(ResultFormat.summary(passed: 3, failed: 1) == "3 passed, 1 failed\n")
  }
}

@Suite("Whole lines")
struct WholeLineTests {
  private let expectation = WholeLines(prefix: "burst ", body: "cpu=[0-9]+ (abc){2}", count: 2)

  @Test func countsOnlyLinesThatMatchEntirely() {
    let clean = SerialLog("burst cpu=0 abcabc\nburst cpu=1 abcabc\n")
    #expect(Judge.wholeLineFailures(clean, expectation).isEmpty)
    let interleaved = SerialLog("burst cpu=0 abcburst cpu=1 abc\nabc\nburst cpu=1 abcabc\n")
    #expect(Judge.wholeLineFailures(interleaved, expectation) == ["1 whole 'burst ' lines, expected 2"])
    let extra = SerialLog("burst cpu=0 abcabc\nburst cpu=1 abcabc\nburst cpu=2 abcabc\n")
    #expect(Judge.wholeLineFailures(extra, expectation).count == 1)
  }

  @Test func noExpectationNoFailure() {
    #expect(Judge.wholeLineFailures(SerialLog("anything"), nil).isEmpty)
  }
}
