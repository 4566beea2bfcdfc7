import HarnessKit
import Testing

// Parsing the harness command line.

@Suite("Options")
struct OptionsTests {
  @Test func checkDefaults() throws {
    let invocation = try Invocation.parse(["check", "--kernel", "build/kernel.elf32"])
    let expected = CheckOptions(
      common: CommonOptions(
        command: QEMUCommand(kernel: "build/kernel.elf32"), logs: "build/logs"),
      jobs: 2, filter: nil)
    #expect(invocation == .check(expected))
  }

  @Test func checkWithEveryFlag() throws {
    let invocation = try Invocation.parse([
      "check", "--kernel=k", "--qemu", "/opt/q", "--accel", "kvm", "--jobs", "4",
      "--filter", "smp-", "--logs", "/tmp/l",
    ])
    guard case .check(let options) = invocation else {
      Issue.record("not check")
      return
    }
    #expect(options.common.command == QEMUCommand(qemu: "/opt/q", kernel: "k", accel: .kvm))
    #expect(options.jobs == 4 && options.filter == "smp-" && options.common.logs == "/tmp/l")
  }

  @Test func benchOptions() throws {
    let defaults = try Invocation.parse(["bench", "--kernel", "k"])
    guard case .bench(let options) = defaults else {
      Issue.record("not bench")
      return
    }
    #expect(options.vcpus == [1, 2, 4, 8, 16, 32, 64] && options.boots == 5)
    #expect(options.json == "build/bench.json")
    let custom = try Invocation.parse(["bench", "--kernel", "k", "--vcpus", "2,8", "--boots", "1"])
    guard case .bench(let options) = custom else { return }
    #expect(options.vcpus == [2, 8] && options.boots == 1)
  }

  @Test func runOptionsBuildOneConfig() throws {
    let invocation = try Invocation.parse([
      "run", "--kernel", "k", "--smp", "4", "--machine", "q35", "--append", "ktest=ipi nosmp",
      "--timeout", "120",
    ])
    guard case .run(let options) = invocation else {
      Issue.record("not run")
      return
    }
    #expect(options.config.smp == "4" && options.config.machine == .q35)
    #expect(options.config.append == "ktest=ipi nosmp" && options.config.timeout == .seconds(120))
    #expect(options.config.expectations.outcome == .pass)
  }

  @Test func traceOptions() throws {
    let defaults = try Invocation.parse(["trace", "--kernel", "k"])
    guard case .trace(let options) = defaults else {
      Issue.record("not trace")
      return
    }
    #expect(options.vcpus == 8 && options.out == "build/stop-trace.json")
    #expect(options.common.logs == "build/logs")
    let custom = try Invocation.parse(["trace", "--kernel", "k", "--smp", "4", "--out", "/tmp/t.json"])
    guard case .trace(let options) = custom else { return }
    #expect(options.vcpus == 4 && options.out == "/tmp/t.json" && options.log == nil)
    let fromLog = try Invocation.parse(["trace", "--log", "build/logs/run.log"])
    guard case .trace(let options) = fromLog else { return }
    #expect(options.log == "build/logs/run.log" && options.common.command.kernel == "")
  }

  @Test(arguments: [
    ([], "no command given"),
    (["boot"], "unknown command 'boot'"),
    (["check"], "--kernel IMAGE is required"),
    (["check", "--kernel"], "--kernel needs a value"),
    (["check", "--kernel", "k", "--smp", "2"], "unknown flag --smp"),
    (["check", "--kernel", "k", "--jobs", "0"], "--jobs needs an integer >= 1, not '0'"),
    (["check", "--kernel", "k", "--kernel", "j"], "--kernel given twice"),
    (["check", "k"], "unexpected argument 'k'"),
    (["check", "--kernel", "k", "--accel", "hvf"], "unknown accelerator 'hvf'"),
    (["bench", "--kernel", "k", "--vcpus", "2,,4"], "--vcpus needs a list like 1,2,4, not '2,,4'"),
    (["run", "--kernel", "k", "--machine", "virt"], "unknown machine 'virt'"),
    (["trace", "--kernel", "k", "--smp", "0"], "--smp needs an integer >= 1, not '0'"),
    (["trace", "--kernel", "k", "--append", "x"], "unknown flag --append"),
    (["trace", "--out", "x.json"], "--kernel IMAGE is required"),
  ])
  func rejectsBadCommandLines(arguments: [String], message: String) {
    #expect(throws: UsageError(message: message)) { try Invocation.parse(arguments) }
  }

  @Test func helpNeedsNoKernel() throws {
    #expect(try Invocation.parse(["--help"]) == .help)
  }
}
