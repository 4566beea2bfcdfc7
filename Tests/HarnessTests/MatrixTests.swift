import Foundation
import HarnessKit
import Testing

// The standard matrix, the QEMU command line, and the order `check` reports in.

@Suite("Matrix and command line")
struct MatrixTests {
  private func config(_ name: String) -> BootConfig {
    Matrix.standard.first { $0.name == name }!
  }

  @Test func namesAreUniqueAndStable() {
    let names = Matrix.standard.map(\.name)
    #expect(Set(names).count == names.count)
    #expect(
      names == [
        "smp-1-pc", "smp-2-pc", "smp-3-pc", "smp-4-pc", "smp-8-pc", "smp-16-pc", "smp-64-pc",
        "smp-255-pc", "smp-288-x2apic-kvm",
        "smp-4-q35", "smp-6-sparse", "no-acpi", "x2apic-kvm", "iso-4", "nosmp", "maxcpus-0",
        "maxcpus-2", "nr-cpus-3", "maxcpus-malformed", "nr-cpus-negative", "unknown-params",
        "dead-ap-2", "slow-ap-before-4", "slow-ap-across-4", "slow-ap-across-8", "slow-ap-after-8",
        "demo-4-ap-timeout-1", "timeouts-zero", "ipi-csd-1ms", "ipi-panic-on-stall",
        "fault-ud", "fault-pf", "fault-triple", "fault-early-ap", "console-8", "console-64",
        "ipi-1", "ipi-2", "ipi-4", "ipi-8", "ipi-maxcpus-2", "ipi-4-kvm", "torture-2", "torture-3",
        "torture-4", "torture-8", "sched-1", "sched-2", "sched-4", "sched-8",
        "sched-4-x2apic-kvm", "demo-4",
        "fault-stack-overflow", "fault-thread-overflow", "fault-boot-stack-overflow",
        "fault-ap-stack-overflow", "fault-nmi-stack-overflow", "fault-nmi-stack-overflow-kvm",
        "fault-write-text", "fault-exec-heap", "fault-stop-stall",
        "stop-1", "stop-2", "stop-3", "stop-4", "stop-8", "hotplug-2", "hotplug-4", "hotplug-8",
        "stop-torture-2", "stop-torture-4", "stop-torture-8", "stop-4-x2apic-kvm", "trace-8", "soak-4",
      ] + sendStopNames(kvm: false) + sendStopNames(kvm: true)
        + ["shell-4", "shell-panic-2", "shell-exit-1", "shell-2-q35", "shell-polled-1", "shell-4-kvm"])
  }

  private func sendStopNames(kvm: Bool) -> [String] {
    (kvm ? [4] : [2, 4, 8]).flatMap { vcpus in
      Matrix.sendStopScenarios.map {
        "sendstop-\($0.replacingOccurrences(of: "_", with: "-"))-\(vcpus)\(kvm ? "-kvm" : "")"
      }
    }
  }

  @Test func stopConfigsRunTheirSuitesWithBoundsThatGrowWithVCPUs() {
    let stop8 = config("stop-8")
    #expect(stop8.append == "ktest=stop" && stop8.expectations.ktapSuites == ["stop"])
    #expect(stop8.expectations.onlineCPUs == Array(0..<8) && !stop8.requiresKVM)
    #expect(stop8.timeout == .seconds(165) && config("stop-1").timeout == .seconds(60))
    #expect(config("hotplug-4").append == "ktest=hotplug")
    #expect(config("hotplug-4").expectations.ktapSuites == ["hotplug"])
    #expect(config("hotplug-4").timeout == .seconds(105))
    let torture = config("stop-torture-2")
    #expect(torture.append == "ktest=stop_torture_regressions,stop_torture torture_ops=3000")
    #expect(torture.expectations.ktapSuites == ["stop_torture_regressions", "stop_torture"])
    #expect(Matrix.standard.filter { $0.expectations.stopTrace }.map(\.name) == ["trace-8"])
  }

  @Test func stopUnderKVMIsSetUpAsTheSchedConfig() {
    let stop = config("stop-4-x2apic-kvm")
    let sched = config("sched-4-x2apic-kvm")
    #expect(stop.requiresKVM && stop.smp == sched.smp && stop.machine == sched.machine)
    #expect(stop.qemuArguments == sched.qemuArguments)
    #expect(stop.expectations.mustContain == sched.expectations.mustContain)
    #expect(stop.append == "ktest=stop,hotplug stop_runs=500")
    #expect(stop.expectations.ktapSuites == ["stop", "hotplug"])
  }

  @Test func traceConfigExpectsTheSuiteAndAValidTrace() {
    let trace = config("trace-8")
    #expect(trace == Matrix.traceConfig(vcpus: 8))
    #expect(trace.append == "ktest=stop_trace" && trace.smp == "8")
    #expect(trace.expectations.ktapSuites == ["stop_trace"] && trace.expectations.stopTrace)
    #expect(trace.expectations.onlineCPUs == Array(0..<8))
  }

  @Test func bootConfigsExpectTheBootSuiteAndDenseCPUs() {
    let smp8 = config("smp-8-pc")
    #expect(smp8.append == "ktest=boot" && smp8.expectations.ktapSuites == ["boot"])
    #expect(smp8.expectations.onlineCPUs == Array(0..<8))
    #expect(smp8.expectations.apicIDs == (0..<8).map { UInt32($0) })
    #expect(config("nr-cpus-3").append == "nr_cpus=3 ktest=boot")
    #expect(config("smp-6-sparse").expectations.apicIDs == [0, 1, 2, 4, 5, 6])
    #expect(config("smp-4-q35").machine == .q35)
  }

  @Test func timeoutsScaleWithVCPUs() {
    #expect(config("smp-16-pc").timeout == .seconds(30))
    #expect(config("smp-64-pc").timeout == .seconds(90))
    #expect(config("smp-6-sparse").timeout == .seconds(30))
    #expect(BootConfig.defaultTimeout(smp: "64,sockets=2") == .seconds(90))
  }

  @Test func faultConfigsExpectTheirEnding() {
    #expect(config("fault-pf").expectations.outcome == .panic)
    #expect(
      config("fault-pf").expectations.mustContain == [
        "exception 14", "CR2=0x", "page fault: read from an unmapped page at", "PANIC: end of report",
      ])
    #expect(config("fault-write-text").expectations.outcome == .panic)
    #expect(config("fault-write-text").expectations.mustContain.contains("PANIC: end of report"))
    #expect(config("fault-nmi-stack-overflow-kvm").requiresKVM)
    #expect(config("fault-nmi-stack-overflow-kvm").append == "ktest=fault_nmi_stack_overflow")
    #expect(config("smp-4-pc").expectations.mustContain.contains("W+X mappings: none"))
    #expect(config("fault-triple").expectations.outcome == .tripleFault)
  }

  @Test func qemuArgumentsForAFileLog() {
    let command = QEMUCommand(kernel: "build/kernel.elf32")
    let arguments = command.arguments(for: config("smp-6-sparse"), serial: .file("l/x.log"))
    #expect(
      arguments == [
        "-machine", "pc", "-accel", "tcg", "-smp", "6,sockets=2,cores=3", "-m", "128M",
        "-kernel", "build/kernel.elf32", "-append", "ktest=boot", "-display", "none",
        "-serial", "file:l/x.log", "-monitor", "none", "-no-reboot",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
      ])
  }

  @Test func isoConfigBootsTheGRUBImageFromACD() {
    let iso = config("iso-4")
    #expect(iso.medium == .cdrom && iso.smp == "4" && !iso.requiresKVM)
    #expect(iso.expectations.ktapSuites == ["boot", "ipi"])
    #expect(iso.expectations.mustContain.contains("Brought up 4 CPUs"))
    #expect(iso.expectations.mustContain.contains("W+X mappings: none"))
    let arguments = QEMUCommand(kernel: "build/kernel.elf32")
      .arguments(for: iso, serial: .file("l/iso-4.log"))
    #expect(
      arguments == [
        "-machine", "pc", "-accel", "tcg", "-smp", "4", "-m", "128M",
        "-cdrom", "build/lockstep.iso", "-boot", "d", "-display", "none",
        "-serial", "file:l/iso-4.log", "-monitor", "none", "-no-reboot",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
      ])
    #expect(!arguments.contains("-kernel") && !arguments.contains("-append"))
    #expect(QEMUCommand(kernel: "k").iso == "lockstep.iso")
    #expect(QEMUCommand(kernel: "/b/kernel.elf32").iso == "/b/lockstep.iso")
    #expect(QEMUCommand(kernel: "k", iso: "x/y.iso").arguments(for: iso, serial: .file("l")).contains("x/y.iso"))
    #expect(CheckRun.configurations(matching: "iso").map(\.name) == ["iso-4"])
  }

  @Test func isoConfigFailsClearlyWithoutAnImage() {
    let directory = NSTemporaryDirectory() + "lockstep-iso-test-\(getpid())"
    let booter = Booter(
      command: QEMUCommand(kernel: "\(directory)/kernel.elf32"), logDirectory: directory)
    let record = booter.boot(config("iso-4"))
    let verdict = Judge.judge(record, against: config("iso-4").expectations)
    #expect(!verdict.passed)
    #expect(verdict.reason == "QEMU did not start: no ISO image at \(directory)/lockstep.iso; `make iso` builds it")
    try? FileManager.default.removeItem(atPath: directory)
  }

  @Test func perConfigArgumentsAndKVM() {
    let command = QEMUCommand(kernel: "k", accel: .tcg)
    let x2apic = command.arguments(for: config("x2apic-kvm"), serial: .file("l"))
    #expect(x2apic.contains("kvm") && !x2apic.contains("host"))
    #expect(x2apic.suffix(2) != ["-cpu", "host"] && x2apic.contains("qemu64,+x2apic"))
    let noACPI = command.arguments(for: config("no-acpi"), serial: .file("l"))
    #expect(noACPI.contains("acpi=off") && noACPI.contains("tcg"))
    #expect(ResultFormat.summary(passed: 3, failed: 1, skipped: 2) == "3 passed, 1 failed, 2 skipped\n")
    #expect(ResultFormat.summary(passed: 3, failed: 0) == "3 passed, 0 failed\n")
  }

  @Test func kvmAddsHostCPUAndTheConsoleIsTeedToTheLog() {
    let command = QEMUCommand(kernel: "k", accel: .kvm)
    let arguments = command.arguments(
      for: config("smp-1-pc"), serial: .console(logPath: "a,b.log"))
    #expect(arguments.contains("-cpu") && arguments.contains("host,-arch-capabilities"))
    #expect(arguments.contains("stdio,id=console,signal=on,logfile=a,,b.log"))
    #expect(arguments.contains("chardev:console") && !arguments.contains("-serial file:"))
  }

  @Test func checkReportsInMatrixOrderWhateverFinishesFirst() {
    let configs = (0..<6).map { BootConfig(name: "c\($0)", smp: "1") }
    let reports = Reports()
    let totals = CheckRun.run(configs, jobs: 3, sink: reports.sink) { config in
      let index = Int(config.name.dropFirst())!
      Thread.sleep(forTimeInterval: Double(6 - index) * 0.02)
      return record("", status: index == 4 ? 37 : 33)
    }
    #expect(totals.passed == 5 && totals.failed == 1)
    #expect(
      reports.all.map { String($0.prefix(8)) } == [
        "PASS  c0", "PASS  c1", "PASS  c2", "PASS  c3", "FAIL  c4", "PASS  c5",
      ])
  }

  @Test func filterSelectsBySubstring() {
    #expect(
      CheckRun.configurations(matching: "fault").map(\.name) == [
        "fault-ud", "fault-pf", "fault-triple", "fault-early-ap", "fault-stack-overflow",
        "fault-thread-overflow", "fault-boot-stack-overflow", "fault-ap-stack-overflow",
        "fault-nmi-stack-overflow", "fault-nmi-stack-overflow-kvm", "fault-write-text",
        "fault-exec-heap", "fault-stop-stall",
      ])
    #expect(CheckRun.configurations(matching: nil).count == Matrix.standard.count)
    #expect(CheckRun.configurations(matching: "zzz").isEmpty)
  }
}
