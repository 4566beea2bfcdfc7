import Foundation
import HarnessKit
import Testing

// `lockstep-harness trace` against a fake QEMU, and converting a saved log.

@Suite("Stop trace: the trace command")
struct TraceCommandTests {
  /// Runs `trace` at 4 vCPUs against a fake QEMU that checks it was asked for the
  /// `stop_trace` suite on 4 vCPUs and prints `log`.
  private func trace(
    printing log: String, in directory: String
  ) throws -> (status: Int32, reports: [String], out: String) {
    let body = """
      case "$*" in *"-smp 4 "*"-append ktest=stop_trace "*) ;; *) exit 1 ;; esac
      printf '%s' '\(log)' > "$serial"
      exit 33
      """
    let script = try fakeQEMU(in: directory, body)
    let out = directory + "/out/stop-trace.json"
    let common = CommonOptions(
      command: QEMUCommand(qemu: script, kernel: "/dev/null"), logs: directory + "/logs")
    let reports = Reports()
    let status = Commands.trace(
      TraceOptions(common: common, vcpus: 4, out: out), sink: reports.sink)
    return (status, reports.all, out)
  }

  @Test func bootsWritesTheFileAndValidatesItAsReadBack() throws {
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let (status, reports, out) = try trace(printing: CannedTrace.ktap4, in: directory)
    #expect(status == 0)
    #expect(reports.first?.hasPrefix("PASS  trace-4  (") == true)
    #expect(
      reports.last?.hasPrefix("stop trace of 4 CPUs (stop 7) written to \(out): valid") == true)
    let written = try Data(contentsOf: URL(fileURLWithPath: out))
    #expect(StopTraceValidator.failures(in: written, cpuCount: 4, online: [0, 1, 2, 3]).isEmpty)
    // The picture beside it: a lane per CPU, four state bars in each.
    let picture = try String(
      contentsOfFile: out.replacingOccurrences(of: ".json", with: ".svg"), encoding: .utf8)
    #expect(picture.hasPrefix("<svg ") && picture.hasSuffix("</svg>\n"))
    for cpu in 0..<4 { #expect(picture.contains(">CPU \(cpu)") ) }
    #expect(picture.components(separatedBy: "<title>").count - 1 == 16)
  }

  /// Bars are placed by time: in the canned trace CPU 0 enters PREPARE 1 us and RUN 6 us
  /// after the call and leaves at 8 us; the axis ends at the next round tick.
  @Test func pictureBarsFollowTheTimes() throws {
    let block = try StopTraceJSON.convert(SerialLog(CannedTrace.ktap4)).block
    let picture = StopTraceSVG.svg(block)
    #expect(picture.contains("<title>CPU 0 PREPARE 1 to 5 µs</title>"))
    #expect(picture.contains("<title>CPU 0 RUN 6 to 7.5 µs</title>"))
    #expect(picture.contains("<title>CPU 0 EXIT 7.5 to 8 µs</title>"))
    #expect(picture.contains(">CPU 0 *<") && picture.contains(">CPU 1<"))
    #expect(StopTraceSVG.tickStep(for: 8.3) == 2 && StopTraceSVG.tickStep(for: 700) == 200)
  }

  @Test func aBootWithoutATraceFailsAndLeavesNoStaleFile() throws {
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try FileManager.default.createDirectory(
      atPath: directory + "/out", withIntermediateDirectories: true)
    try Data("stale".utf8).write(to: URL(fileURLWithPath: directory + "/out/stop-trace.json"))
    let (status, reports, out) = try trace(printing: CannedLog.boot4, in: directory)
    #expect(status == 1)
    #expect(reports.first?.hasPrefix("FAIL  trace-4  (KTAP suite 'stop_trace' missing)") == true)
    #expect(reports.last == "stop trace: no 'stoptrace begin' line\n")
    #expect(!FileManager.default.fileExists(atPath: out))
  }

  @Test func convertsAGivenLogWithoutBooting() throws {
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let log = directory + "/run.log"
    try CannedTrace.ktap4.write(toFile: log, atomically: true, encoding: .utf8)
    let options = TraceOptions(
      common: CommonOptions(command: QEMUCommand(qemu: "no-such-qemu", kernel: "")),
      out: directory + "/t.json", log: log)
    let reports = Reports()
    #expect(Commands.trace(options, sink: reports.sink) == 0)
    #expect(reports.all.count == 1 && reports.all[0].contains(": valid;"))
    var missing = options
    missing.log = directory + "/none.log"
    #expect(Commands.trace(missing, sink: reports.sink) == 1)
    #expect(reports.all.last == "stop trace: cannot read \(directory)/none.log\n")
  }

  @Test func anInvalidTraceIsWrittenForALookButFails() throws {
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let out = directory + "/t.json"
    let log = SerialLog(CannedTrace.bare(cpus: 2, count: 3))
    let reports = Reports()
    #expect(!Commands.writeTrace(of: log, to: out, sink: reports.sink))
    #expect(
      reports.all == [
        "stop trace: 2 CPU tracks, the begin line says cpus=3\n",
        "stop trace: written to \(out) anyway, for a look\n",
      ])
    #expect(FileManager.default.fileExists(atPath: out))
  }
}
