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
