import Foundation
import HarnessKit
import Testing

// The stop trace: reading the `stoptrace` block, converting it to trace-event JSON, and
// validating that JSON against good and broken files.

@Suite("Stop trace: reading and converting")
struct StopTraceConversionTests {
  @Test func readsTheBlockFromKTAPDiagnosticsPastOtherLines() throws {
    let block = try StopTraceBlock.parse(SerialLog(CannedTrace.ktap4))
    #expect(block.generation == 7 && block.cpuCount == 4 && block.tscKHz == 2_000_000)
    #expect(block.cpus.map(\.cpu) == [0, 1, 2, 3])
    #expect(
      block.cpus[0]
        == StopTraceCPU(
          cpu: 0, isActive: true, called: 1_000_000, prepare: 1_002_000, disableIRQ: 1_010_000,
          run: 1_012_000, exit: 1_015_000, left: 1_016_000))
    #expect(block.cpus[1].isActive == false)
  }

  @Test func readsABareBlock() throws {
    let block = try StopTraceBlock.parse(SerialLog(CannedTrace.bare(cpus: 2)))
    #expect(block.cpuCount == 2 && block.cpus.count == 2 && block.cpus[1].prepare == 6000)
  }

  @Test(arguments: [
    ("nothing here\n", "no 'stoptrace begin' line"),
    (
      "stoptrace begin stop=1 cpus=2 tsc_khz=0\nstoptrace end\n",
      "malformed line 'stoptrace begin stop=1 cpus=2 tsc_khz=0'"
    ),
    ("stoptrace begin stop=1 cpus=2\nstoptrace end\n", "malformed line 'stoptrace begin stop=1 cpus=2'"),
    (
      "stoptrace begin stop=1 cpus=1 tsc_khz=5\nstoptrace cpu=0 active=2 called=1 prepare=1 "
        + "disable_irq=1 run=1 exit=1 left=1\nstoptrace end\n",
      "malformed line 'stoptrace cpu=0 active=2 called=1 prepare=1 disable_irq=1 run=1 exit=1 left=1'"
    ),
    (
      "stoptrace begin stop=1 cpus=1 tsc_khz=5\nstoptrace cpu=0 active=1 called=1 prepare=-1 "
        + "disable_irq=1 run=1 exit=1 left=1\n",
      "malformed line 'stoptrace cpu=0 active=1 called=1 prepare=-1 disable_irq=1 run=1 exit=1 left=1'"
    ),
    (
      "stoptrace begin stop=1 cpus=1 tsc_khz=5\nstoptrace cpu=0 active=1 called=1 prepare=1 "
        + "disable_irq=1 run=1 exit=1\nstoptrace end\n",
      "malformed line 'stoptrace cpu=0 active=1 called=1 prepare=1 disable_irq=1 run=1 exit=1'"
    ),
    (
      "stoptrace begin stop=1 cpus=1 tsc_khz=5\nstoptrace cpu=0 active=1 called=1 prepare=1 "
        + "disable_irq=1 run=1 exit=1 left=1\n", "no 'stoptrace end' line after 1 CPU lines"
    ),
  ])
  func rejectsMissingAndMalformedLines(log: String, message: String) {
    #expect(throws: StopTraceError(message)) { try StopTraceBlock.parse(SerialLog(log)) }
  }

  @Test func convertsToOneTrackPerCPUWithMicrosecondsFromCalled() throws {
    let block = try StopTraceBlock.parse(SerialLog(CannedTrace.ktap4))
    let object = try #require(
      try JSONSerialization.jsonObject(with: StopTraceJSON.data(block)) as? [String: Any])
    #expect(object["displayTimeUnit"] as? String == "ns")
    let events = try #require(object["traceEvents"] as? [[String: Any]])
    #expect(events.count == 1 + 4 * 5)
    let names = events.filter { $0["name"] as? String == "thread_name" }
    #expect(names.map { $0["tid"] as? Int } == [0, 1, 2, 3])
    #expect(
      names.map { ($0["args"] as? [String: Any])?["name"] as? String } == [
        "CPU 0", "CPU 1", "CPU 2", "CPU 3",
      ])
    let cpu0 = events.filter { $0["ph"] as? String == "X" && $0["tid"] as? Int == 0 }
    #expect(cpu0.map { $0["name"] as? String } == ["PREPARE", "DISABLE_IRQ", "RUN", "EXIT"])
    #expect(cpu0.map { $0["ts"] as? Double } == [1, 5, 6, 7.5])
    #expect(cpu0.map { $0["dur"] as? Double } == [4, 1, 1.5, 0.5])
    #expect(cpu0.allSatisfy { $0["pid"] as? Int == 1 })
    #expect((cpu0.first?["args"] as? [String: Any])?["active"] as? Int == 1)
    // CPU 1 enters DISABLE_IRQ 5.05 us after `called`: kept to the nanosecond.
    let cpu1 = events.first { $0["name"] as? String == "DISABLE_IRQ" && $0["tid"] as? Int == 1 }
    #expect(cpu1?["ts"] as? Double == 5.05)
  }

  @Test func durationsAreWholeNanosecondsOfRealTSCs() throws {
    // CPU 0's line from a TCG boot (TSC at 2.6 GHz): 7174.127 us after `called` it
    // entered PREPARE, and 48.005 us later DISABLE_IRQ; not 48.0049999999992.
    let log = SerialLog(
      """
      smp: online cpus=0 apic=0
      stoptrace begin stop=1 cpus=1 tsc_khz=2595960
      stoptrace cpu=0 active=1 called=972201098 prepare=990824846 disable_irq=990949464 \
      run=991182970 exit=991542108 left=992011772
      stoptrace end
      """)
    let converted = try StopTraceJSON.convert(log)
    let object = try JSONSerialization.jsonObject(with: converted.data) as? [String: Any]
    let prepare = (object?["traceEvents"] as? [[String: Any]])?
      .first { $0["name"] as? String == "PREPARE" }
    #expect(prepare?["ts"] as? Double == 7174.127 && prepare?["dur"] as? Double == 48.005)
    #expect(
      StopTraceValidator.failures(in: converted.data, cpuCount: 1, online: converted.online)
        .isEmpty)
  }

  @Test func keepsANegativeDurationForTheValidator() throws {
    var block = try StopTraceBlock.parse(SerialLog(CannedTrace.bare(cpus: 1)))
    block.cpus[0].left = block.cpus[0].exit - 500
    let failures = StopTraceValidator.failures(
      in: try StopTraceJSON.data(block), cpuCount: 1, online: [0])
    #expect(failures == ["CPU 0: EXIT has negative duration -0.5 us"])
  }

  @Test func aValidTraceHasNoFailures() throws {
    #expect(StopTraceValidator.failures(inLog: SerialLog(CannedTrace.ktap4)).isEmpty)
    #expect(StopTraceValidator.failures(inLog: SerialLog(CannedTrace.bare(cpus: 8))).isEmpty)
  }

  @Test func theLogMustAgreeWithItsBeginLineAndOnlineCPUs() {
    let missing = CannedTrace.bare(cpus: 4).split(separator: "\n")
      .filter { !$0.hasPrefix("stoptrace cpu=2 ") }.joined(separator: "\n")
    #expect(
      StopTraceValidator.failures(inLog: SerialLog(missing)) == [
        "3 CPU tracks, the begin line says cpus=4", "CPU 2: online but has no track",
      ])
    let noOnlineLine = CannedTrace.bare(cpus: 2).replacingOccurrences(of: "smp: online", with: "x")
    #expect(
      StopTraceValidator.failures(inLog: SerialLog(noOnlineLine)) == [
        "no 'smp: online' line to check the tracks against"
      ])
  }
}

@Suite("Stop trace: validating broken files")
struct StopTraceValidatorTests {
  /// One hand-made slice: `(tid, name, ts, dur)`.
  typealias Slice = (tid: Int, name: String, ts: Double, dur: Double)

  /// A trace file with `tracks` named as given and `slices`, written as the kernel's
  /// converter would not.
  private func file(tracks: [(Int, String)], slices: [Slice]) throws -> Data {
    var events: [[String: Any]] = tracks.map { tid, name in
      ["name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": ["name": name]]
    }
    events += slices.map { slice in
      ["name": slice.name, "ph": "X", "pid": 1, "tid": slice.tid, "ts": slice.ts, "dur": slice.dur]
    }
    return try JSONSerialization.data(withJSONObject: ["traceEvents": events])
  }

  /// The four states of CPU `tid`, back to back from `start`, 1 us each.
  private func states(_ tid: Int, from start: Double = 0) -> [Slice] {
    ["PREPARE", "DISABLE_IRQ", "RUN", "EXIT"].enumerated().map { index, name in
      (tid, name, start + Double(index), 1)
    }
  }

  @Test func handMadeGoodFilePasses() throws {
    let data = try file(tracks: [(0, "CPU 0"), (1, "CPU 1")], slices: states(0) + states(1, from: 0.25))
    #expect(StopTraceValidator.failures(in: data, cpuCount: 2, online: [0, 1]).isEmpty)
  }

  @Test func notJSONOrNotATraceObject() {
    let broken = StopTraceValidator.failures(in: Data("{\"traceEvents\": [".utf8), cpuCount: 1, online: [0])
    #expect(broken.count == 1 && broken[0].hasPrefix("not well-formed JSON"))
    let array = StopTraceValidator.failures(in: Data("[]".utf8), cpuCount: 1, online: [0])
    #expect(array == ["not a trace object: no 'traceEvents' array"])
  }

  @Test func tracksMustMatchTheCountAndTheOnlineCPUs() throws {
    let data = try file(
      tracks: [(0, "CPU 0"), (2, "CPU 2"), (2, "CPU 2"), (3, "cpu3")],
      slices: states(0) + states(2) + states(3) + states(5))
    #expect(
      StopTraceValidator.failures(in: data, cpuCount: 4, online: [0, 1, 2]) == [
        "3 CPU tracks, the begin line says cpus=4", "CPU 1: online but has no track",
        "CPU 2: 2 tracks", "CPU 3: has a track but is not online", "CPU 3: track named 'cpu3'",
        "CPU 5: slices on an unnamed track",
      ])
  }

  @Test func eachStateOnceAndNoOther() throws {
    var slices = states(0)
    slices[3].name = "RUN"
    slices.append((0, "IDLE", 9, 1))
    let data = try file(tracks: [(0, "CPU 0"), (1, "CPU 1")], slices: slices)
    #expect(
      StopTraceValidator.failures(in: data, cpuCount: 2, online: [0, 1]) == [
        "CPU 0: RUN appears 2 times", "CPU 0: EXIT appears 0 times",
        "CPU 0: unknown state 'IDLE'", "CPU 1: no state slices",
      ])
  }

  @Test func statesMustComeInOrder() throws {
    var slices = states(1)
    (slices[1].ts, slices[2].ts) = (slices[2].ts, slices[1].ts)
    let data = try file(tracks: [(1, "CPU 1")], slices: slices)
    #expect(
      StopTraceValidator.failures(in: data, cpuCount: 1, online: [1]) == [
        "CPU 1: states in order PREPARE, RUN, DISABLE_IRQ, EXIT, "
          + "expected PREPARE, DISABLE_IRQ, RUN, EXIT"
      ])
  }

  @Test func slicesOfATrackMustNotOverlap() throws {
    var slices = states(0)
    slices[1].dur = 1.5
    let data = try file(tracks: [(0, "CPU 0")], slices: slices)
    #expect(
      StopTraceValidator.failures(in: data, cpuCount: 1, online: [0]) == [
        "CPU 0: DISABLE_IRQ [1.0, 2.5) us overlaps RUN from 2.0 us"
      ])
  }

  @Test func durationsMustNotBeNegative() throws {
    var slices = states(0)
    slices[2].dur = -0.25
    let data = try file(tracks: [(0, "CPU 0")], slices: slices)
    #expect(
      StopTraceValidator.failures(in: data, cpuCount: 1, online: [0]) == [
        "CPU 0: RUN has negative duration -0.25 us"
      ])
  }

  @Test func zeroLengthStatesAndRoundingAreFine() throws {
    // DISABLE_IRQ lasts 0 ns; the times are sums that binary floating point cannot hold.
    let slices: [Slice] = [
      (0, "PREPARE", 0.1, 0.2), (0, "DISABLE_IRQ", 0.3, 0), (0, "RUN", 0.3, 0.7),
      (0, "EXIT", 1.0, 0.001),
    ]
    let data = try file(tracks: [(0, "CPU 0")], slices: slices)
    #expect(StopTraceValidator.failures(in: data, cpuCount: 1, online: [0]).isEmpty)
  }

  @Test func judgeRunsTheSameCheckOnTheTraceConfig() {
    let config = Matrix.standard.first { $0.name == "trace-8" }!
    let good = Judge.judge(record(CannedTrace.bare(cpus: 8)), against: config.expectations)
    #expect(good.passed, "\(good.reason)")
    let broken = CannedTrace.bare(cpus: 8).replacingOccurrences(
      of: "stoptrace cpu=3 active=0 called=5000 prepare=8000 disable_irq=9000",
      with: "stoptrace cpu=3 active=0 called=5000 prepare=8000 disable_irq=7000")
    let verdict = Judge.judge(record(broken), against: config.expectations)
    #expect(
      verdict.failures == [
        "stop trace: CPU 3: PREPARE has negative duration -1.0 us",
        "stop trace: CPU 3: states in order DISABLE_IRQ, PREPARE, RUN, EXIT, "
          + "expected PREPARE, DISABLE_IRQ, RUN, EXIT",
        "stop trace: CPU 3: DISABLE_IRQ [2.0, 5.0) us overlaps PREPARE from 3.0 us",
      ])
    let none = Judge.judge(record(CannedLog.boot4), against: Expectations(stopTrace: true))
    #expect(none.failures == ["stop trace: no 'stoptrace begin' line"])
  }
}
