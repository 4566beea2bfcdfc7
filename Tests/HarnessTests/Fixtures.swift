import Foundation
import HarnessKit
import Synchronization

// Canned serial logs and records shared by the tests.

/// Serial logs as the kernel prints them.
enum CannedLog {
  /// A clean 4-CPU boot running the boot suite, with CRLF line ends on some lines.
  static let boot4 = """
    Lockstep booting\r
    cmdline: ktest=boot\r
    Brought up 4 CPUs\r
    smp: online cpus=0,1,2,3 apic=0,1,2,3
    W+X mappings: none
    KTAP version 1
    1..1
        KTAP version 1
        # Subtest: boot
        1..3
        ok 1 cpus_online
        # all 4 CPUs answered
        ok 2 apic_ids_unique
        ok 3 x2apic # SKIP xAPIC only
    ok 1 boot

    """

  /// A 4-CPU boot where CPU 2 never came online.
  static let deadAP = """
    smp: CPU 2 (APIC 2) did not come online after 2 attempts (412 ms since first INIT); left offline
    Brought up 3 CPUs
    smp: online cpus=0,1,3 apic=0,1,3
    KTAP version 1
    1..1
        KTAP version 1
        # Subtest: boot
        1..1
        ok 1 cpus_online
    ok 1 boot

    """

  /// An invalid-opcode panic on CPU 0, with a complete report.
  static let panicUD = """
    Brought up 2 CPUs
    smp: online cpus=0,1 apic=0,1
    PANIC: CPU 0: exception 6 (#UD invalid opcode) error 0x0
    PANIC: RIP=0xffffffff80001234 RSP=0xffffffff80100000
    PANIC: CR2=0x0
    PANIC: end of report

    """

  /// A boot-suite log whose second case failed.
  static let failingCase = """
    Brought up 4 CPUs
    smp: online cpus=0,1,2,3 apic=0,1,2,3
    W+X mappings: none
    KTAP version 1
    1..1
        KTAP version 1
        # Subtest: boot
        1..2
        ok 1 cpus_online
        not ok 2 apic_ids_unique
    not ok 1 boot

    """
}

/// Stop traces as the kernel prints them (`ktest=stop_trace`).
enum CannedTrace {
  /// A passing 4-CPU boot whose trace lines are KTAP diagnostics; a line of another CPU
  /// falls inside the block. 2 TSC ticks a nanosecond: CPU 0 enters PREPARE 1 us after
  /// `called`, DISABLE_IRQ at 5 us, RUN at 6 us, EXIT at 7.5 us, and leaves at 8 us.
  static let ktap4 = """
    Brought up 4 CPUs
    smp: online cpus=0-3 apic=0-3
    KTAP version 1
    1..1
        KTAP version 1
        # Subtest: stop_trace
        1..1
        # stoptrace begin stop=7 cpus=4 tsc_khz=2000000
        # stoptrace cpu=0 active=1 called=1000000 prepare=1002000 disable_irq=1010000 run=1012000 exit=1015000 left=1016000
        # stoptrace cpu=1 active=0 called=1000000 prepare=1004000 disable_irq=1010100 run=1012100 exit=1015100 left=1016200
    sched: an unrelated line
        # stoptrace cpu=2 active=0 called=1000000 prepare=1006000 disable_irq=1010200 run=1012200 exit=1015200 left=1016400
        # stoptrace cpu=3 active=0 called=1000000 prepare=1008000 disable_irq=1010300 run=1012300 exit=1015300 left=1016600
        # stoptrace end
        ok 1 one_stop_machine_traced
    ok 1 stop_trace

    """

  /// A passing boot of `cpus` CPUs with a bare (not KTAP) trace block; each CPU `n`
  /// enters PREPARE n us after `called` and spends 1 us in each state (1 tick a ns).
  static func bare(cpus: Int, cpuLines: [String]? = nil, count: Int? = nil) -> String {
    let lines =
      cpuLines
      ?? (0..<cpus).map { cpu in
        let start = 5000 + cpu * 1000
        let times = (0..<5).map { "\(start + $0 * 1000)" }
        return "stoptrace cpu=\(cpu) active=\(cpu == 0 ? 1 : 0) called=5000 prepare=\(times[0]) "
          + "disable_irq=\(times[1]) run=\(times[2]) exit=\(times[3]) left=\(times[4])"
      }
    let head = [
      "Brought up \(cpus) CPUs", "smp: online cpus=0-\(cpus - 1) apic=0-\(cpus - 1)",
      "KTAP version 1", "1..1", "    KTAP version 1", "    # Subtest: stop_trace", "    1..1",
      "stoptrace begin stop=1 cpus=\(count ?? cpus) tsc_khz=1000000",
    ]
    let tail = ["stoptrace end", "    ok 1 one_stop_machine_traced", "ok 1 stop_trace", ""]
    return (head + lines + tail).joined(separator: "\n")
  }
}

/// A record of a boot that exited with `status` after printing `log`.
func record(_ log: String, status: Int32 = 33, qemuOutput: String = "") -> BootRecord {
  BootRecord(
    termination: .exited(status), log: SerialLog(log), qemuOutput: qemuOutput,
    elapsed: .milliseconds(1234))
}

/// A record of a boot that ended as `termination` after printing `log`.
func record(_ log: String, ended termination: Termination) -> BootRecord {
  BootRecord(
    termination: termination, log: SerialLog(log), qemuOutput: "", elapsed: .seconds(30))
}

/// The expectations of the standard `smp-4-pc` configuration.
let boot4Expectations = Matrix.standard.first { $0.name == "smp-4-pc" }!.expectations

/// A fresh temporary directory, removed by the caller.
func temporaryDirectory() throws -> String {
  let path = NSTemporaryDirectory() + "harness-tests-" + UUID().uuidString
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

/// Writes an executable shell script standing in for QEMU. Before `body` runs, `$serial`
/// holds the path of the `-serial file:` argument.
/// - Returns: The script's path.
func fakeQEMU(in directory: String, _ body: String) throws -> String {
  let path = directory + "/fake-qemu"
  let script = """
    #!/bin/sh
    serial=
    prev=
    for a in "$@"; do
      if [ "$prev" = "-serial" ]; then serial="${a#file:}"; fi
      prev="$a"
    done
    \(body)

    """
  try script.write(toFile: path, atomically: true, encoding: .utf8)
  try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
  return path
}

/// Collects what a `ReportSink` receives, from any thread.
final class Reports: Sendable {
  private let texts = Mutex<[String]>([])

  /// Everything received, in order.
  var all: [String] { texts.withLock { $0 } }

  /// The sink.
  var sink: ReportSink { { text in self.texts.withLock { $0.append(text) } } }
}
