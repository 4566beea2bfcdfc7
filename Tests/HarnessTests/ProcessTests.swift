import Foundation
import HarnessKit
import Testing

// Process handling against a fake QEMU: a shell script that writes the serial file it is given
// and then exits with a chosen status, or hangs.

@Suite("QEMU process")
struct ProcessTests {
  private func boot(
    _ body: String, config: BootConfig, qemu: String? = nil
  ) throws -> (BootRecord, Verdict, String) {
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let script = try fakeQEMU(in: directory, body)
    let command = QEMUCommand(qemu: qemu ?? script, kernel: "/dev/null")
    let booter = Booter(command: command, logDirectory: directory + "/logs")
    let record = booter.boot(config)
    let log = (try? String(contentsOfFile: booter.logPath(of: config), encoding: .utf8)) ?? ""
    return (record, Judge.judge(record, against: config.expectations), log)
  }

  @Test func passingBootIsJudgedFromTheSerialFile() throws {
    let config = BootConfig.bootSuite("fake-4", smp: "4", online: [0, 1, 2, 3])
    let body = "printf '%s' '\(CannedLog.boot4)' > \"$serial\"\nexit 33"
    let (record, verdict, log) = try boot(body, config: config)
    #expect(record.termination == .exited(33))
    #expect(verdict.passed, "\(verdict.reason)")
    #expect(log.hasPrefix("Lockstep booting"))
  }

  @Test func hangingQEMUIsKilledWithinTheBound() throws {
    let config = BootConfig(name: "hang", smp: "1", timeout: .seconds(1))
    let body = "echo 'Brought up 1 CPUs' > \"$serial\"\nexec sleep 30"
    let (record, verdict, _) = try boot(body, config: config)
    #expect(record.termination == .timedOut(.seconds(1)))
    #expect(record.elapsed < .seconds(4))
    #expect(verdict.reason == "timeout after 1 s")
    #expect(record.log.lines == ["Brought up 1 CPUs"])
  }

  @Test func qemuIgnoringSIGTERMIsKilledAfterTheGrace() throws {
    let config = BootConfig(name: "stubborn", smp: "1", timeout: .milliseconds(500))
    let body = "trap '' TERM\nwhile :; do sleep 0.1; done"
    let (record, _, _) = try boot(body, config: config)
    #expect(record.termination == .timedOut(.milliseconds(500)))
    #expect(record.elapsed >= BoundedProcess.killGrace)
    #expect(record.elapsed < .milliseconds(500) + .seconds(3))
  }

  @Test func statusZeroIsATripleFault() throws {
    let config = BootConfig(name: "reset", smp: "1", timeout: .seconds(2))
    let (record, verdict, _) = try boot(": > \"$serial\"\nexit 0", config: config)
    #expect(record.termination == .exited(0))
    #expect(verdict.reason == "expected pass, got triple fault (status 0)")
  }

  @Test func qemuStderrShowsInTheReason() throws {
    let config = BootConfig(name: "bad-smp", smp: "0", timeout: .seconds(2))
    let body = "echo \"qemu-system-x86_64: -smp 0: Invalid CPU topology\" >&2\nexit 1"
    let (_, verdict, _) = try boot(body, config: config)
    #expect(
      verdict.reason
        == "expected pass, got QEMU error (status 1): qemu-system-x86_64: -smp 0: Invalid CPU topology"
    )
  }

  @Test func missingQEMUFailsToStart() throws {
    let config = BootConfig(name: "none", smp: "1", timeout: .seconds(1))
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let booter = Booter(
      command: QEMUCommand(qemu: "no-such-qemu-\(UUID().uuidString)", kernel: "/dev/null"),
      logDirectory: directory)
    let record = booter.boot(config)
    #expect(
      Judge.judge(record, against: config.expectations).reason.hasPrefix("QEMU did not start"))
  }

  @Test func checkRunsFakeBootsTwoAtATime() throws {
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let script = try fakeQEMU(in: directory, "sleep 0.5\nexit 33")
    let booter = Booter(
      command: QEMUCommand(qemu: script, kernel: "/dev/null"), logDirectory: directory)
    let configs = (1...4).map { BootConfig(name: "fake-\($0)", smp: "1", timeout: .seconds(2)) }
    let reports = Reports()
    let start = ContinuousClock.now
    let totals = CheckRun.run(configs, jobs: 2, sink: reports.sink) { booter.boot($0) }
    #expect(totals.passed == 4 && totals.failed == 0)
    // Four half-second boots, two at a time: about one second, where one at a time takes two.
    #expect(ContinuousClock.now - start < .milliseconds(1800))
    #expect(reports.all.map { $0.prefix(12) } == (1...4).map { "PASS  fake-\($0)" })
  }

  @Test func qemuVersionIsTheFirstLine() throws {
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let script = try fakeQEMU(in: directory, "echo 'QEMU emulator version 7.2.22'\necho '(c) x'")
    #expect(
      BenchRun.qemuVersion(script, scratchPath: directory + "/v") == "QEMU emulator version 7.2.22")
  }
}
