import HarnessKit
import Testing

// The judge against every way a boot can end: statuses 33/35/37/0/other, timeout, no start.

@Suite("Judge: how the boot ended")
struct JudgeOutcomeTests {
  @Test func status33WithPassingKTAPPasses() {
    let verdict = Judge.judge(record(CannedLog.boot4), against: boot4Expectations)
    #expect(verdict.passed, "\(verdict.reason)")
  }

  @Test func status33WithFailingKTAPFailsNamingTheCase() {
    let verdict = Judge.judge(record(CannedLog.failingCase), against: boot4Expectations)
    #expect(verdict.failures == ["KTAP: boot.apic_ids_unique not ok, boot not ok"])
  }

  @Test func status33WithoutKTAPPassesWhenNoSuiteIsExpected() {
    let verdict = Judge.judge(record("hello\n"), against: Expectations())
    #expect(verdict.passed)
  }

  @Test func status35FailsAPassNamingTheFailingCases() {
    let verdict = Judge.judge(record(CannedLog.failingCase, status: 35), against: boot4Expectations)
    #expect(
      verdict.failures == [
        "expected pass, got tests failed (status 35): boot.apic_ids_unique not ok, boot not ok"
      ])
  }

  @Test func status35IsTheExpectedTestsFailOutcome() {
    let verdict = Judge.judge(
      record(CannedLog.failingCase, status: 35), against: Expectations(outcome: .testsFail))
    #expect(verdict.passed)
  }

  @Test func status37WithCompleteReportIsTheExpectedPanic() {
    let faultUD = Matrix.standard.first { $0.name == "fault-ud" }!
    let verdict = Judge.judge(record(CannedLog.panicUD, status: 37), against: faultUD.expectations)
    #expect(verdict.passed, "\(verdict.reason)")
  }

  @Test func status37WithoutEndOfReportFails() {
    let truncated = "PANIC: CPU 0: exception 14 (#PF page fault) error 0x2\nPANIC: CR2=0x0\n"
    let verdict = Judge.judge(record(truncated, status: 37), against: Expectations(outcome: .panic))
    #expect(verdict.failures == ["PANIC: report lacks 'PANIC: end of report'"])
    let silent = Judge.judge(record("", status: 37), against: Expectations(outcome: .panic))
    #expect(silent.failures == ["no PANIC: report"])
  }

  @Test func status37FailsAPassQuotingThePanic() {
    let verdict = Judge.judge(record(CannedLog.panicUD, status: 37), against: Expectations())
    #expect(
      verdict.reason
        == "expected pass, got kernel panic (status 37): "
        + "PANIC: CPU 0: exception 6 (#UD invalid opcode) error 0x0")
  }

  @Test func status0IsATripleFault() {
    let unexpected = Judge.judge(record("", status: 0), against: Expectations())
    #expect(unexpected.failures == ["expected pass, got triple fault (status 0)"])
    let expected = Judge.judge(record("", status: 0), against: Expectations(outcome: .tripleFault))
    #expect(expected.passed)
  }

  @Test func otherStatusIsAQEMUErrorWithItsMessageAndNothingElse() {
    let output = "qemu-system-x86_64: warning: dubious\nqemu-system-x86_64: -smp 0: bad\n"
    let verdict = Judge.judge(record("", status: 1, qemuOutput: output), against: boot4Expectations)
    #expect(
      verdict.failures == [
        "expected pass, got QEMU error (status 1): qemu-system-x86_64: -smp 0: bad"
      ]
    )
  }

  @Test func timeoutIsReportedFirstWithWhatTheLogLacks() {
    let verdict = Judge.judge(
      record("Brought up 4 CPUs\n", ended: .timedOut(.seconds(30))), against: boot4Expectations)
    #expect(verdict.failures.first == "timeout after 30 s")
    #expect(verdict.failures.contains("KTAP suite 'boot' missing"))
  }

  @Test func fractionalBoundsPrintWithOneDecimal() {
    let verdict = Judge.judge(
      record("", ended: .timedOut(.milliseconds(1500))), against: Expectations())
    #expect(verdict.reason == "timeout after 1.5 s")
  }

  @Test func qemuThatCannotStartOrDiesIsReported() {
    let missing = Judge.judge(
      record("", ended: .failedToStart("qemu-x not found in PATH")), against: boot4Expectations)
    #expect(missing.reason == "QEMU did not start: qemu-x not found in PATH")
    let killed = Judge.judge(record("", ended: .signaled(9)), against: Expectations())
    #expect(killed.reason == "QEMU killed by signal 9")
  }

  @Test func statusesMapToKernelExits() {
    #expect(KernelExit(status: 33) == .passed)
    #expect(KernelExit(status: 35) == .testsFailed)
    #expect(KernelExit(status: 37) == .panicked)
    #expect(KernelExit(status: 0) == .tripleFault)
    #expect(KernelExit(status: 39) == .qemuError(39))
  }
}
