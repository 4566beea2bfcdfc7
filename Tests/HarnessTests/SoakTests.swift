import Foundation
import HarnessKit
import Testing

// The soak's counter lines, how a soak boot is judged, and the `soak` command's options.

@Suite("Soak")
struct SoakTests {
  private static let progressLine =
    "    # soak: s=10 rounds=2 calls=233818 calls_err=0 stops=1925 stops_err=0 hotplug=509 hotplug_err=0 ops=236252 errors=0 heap_kib=711"
  private static let endLine =
    "    # soak end: s=25 rounds=5 calls=522752 calls_err=0 stops=4815 stops_err=0 hotplug=1204 hotplug_err=0 ops=528771 errors=0 heap_kib=711"

  private func counters(
    seconds: Int = 25, calls: Int = 100, stops: Int = 10, hotplug: Int = 5,
    errors: (Int, Int, Int) = (0, 0, 0), isFinal: Bool = true
  ) -> SoakProgress {
    SoakProgress(
      seconds: seconds, rounds: 5, calls: calls, callErrors: errors.0, stops: stops,
      stopErrors: errors.1, hotplug: hotplug, hotplugErrors: errors.2,
      operations: calls + stops + hotplug, errors: errors.0 + errors.1 + errors.2, heapKiB: 711,
      isFinal: isFinal)
  }

  @Test func parsesProgressAndEndLines() throws {
    let progress = try #require(SoakProgress.parse(Self.progressLine[...]))
    #expect(!progress.isFinal && progress.seconds == 10 && progress.rounds == 2)
    #expect(progress.calls == 233_818 && progress.stops == 1925 && progress.hotplug == 509)
    #expect(progress.operations == 236_252 && progress.errors == 0 && progress.heapKiB == 711)
    #expect(progress.operationsPerSecond == 23_625)
    let end = try #require(SoakProgress.parse(Self.endLine[...]))
    #expect(end.isFinal && end.seconds == 25 && end.operations == 528_771)
  }

  @Test func ignoresLinesThatAreNotCounters() {
    let lines = [
      "    # soak: 25 s on 4 CPUs, seed 849374448 (torture_seed=849374448); rounds of 4000 ms",
      "    # soak: s=10 rounds=2 calls=1",  // keys missing
      "    # soak: s=10 rounds=x calls=1 calls_err=0 stops=1 stops_err=0 hotplug=1 hotplug_err=0 ops=3 errors=0 heap_kib=1",
      "soak: s=10 rounds=2 calls=1 calls_err=0 stops=1 stops_err=0 hotplug=1 hotplug_err=0 ops=3 errors=0 heap_kib=1",
      "    # stop torture: #12 stop_two_cpus(3, 5) from CPU 2: refused",
    ]
    for line in lines { #expect(SoakProgress.parse(line[...]) == nil, "\(line)") }
  }

  @Test func logCollectsCounterLinesInOrder() {
    let log = SerialLog(
      ["KTAP version 1", Self.progressLine, "    # other", Self.endLine, ""].joined(separator: "\n"))
    #expect(log.soakProgress.map(\.seconds) == [10, 25])
    #expect(log.soakProgress.map(\.isFinal) == [false, true])
  }

  @Test func aCleanSoakPasses() {
    let lines = [counters(seconds: 10, isFinal: false), counters()]
    #expect(SoakJudge.failures(lines, seconds: 25).isEmpty)
    // A short soak needs neither progress lines nor stops.
    #expect(SoakJudge.failures([counters(seconds: 3, stops: 0, hotplug: 0)], seconds: 3).isEmpty)
  }

  @Test func errorsFailWithTheirCategories() {
    let failures = SoakJudge.failures([counters(errors: (0, 2, 1))], seconds: 20)
    #expect(failures == ["3 errors (calls 0, stops 2, hotplug 1)"])
  }

  @Test func aMissingEndLineFailsNamingTheLastProgress() {
    let failures = SoakJudge.failures([counters(seconds: 10, isFinal: false)], seconds: 20)
    #expect(failures.count == 1 && failures[0].hasPrefix("no 'soak end' counter line, last progress at s=10"))
    #expect(SoakJudge.failures([], seconds: 20) == ["no 'soak end' counter line"])
  }

  @Test func shortfallsFail() {
    #expect(SoakJudge.failures([counters(seconds: 12)], seconds: 20) == ["ended after 12 s of 20"])
    let noHotplug = SoakJudge.failures([counters(seconds: 20, hotplug: 0)], seconds: 20)
    #expect(noHotplug.count == 1 && noHotplug[0].hasPrefix("not every category ran"))
    #expect(SoakJudge.failures([counters(seconds: 30)], seconds: 30) == ["no progress line before the end"])
    var wrong = counters(seconds: 20)
    wrong.operations += 1
    let disagree = SoakJudge.failures([wrong], seconds: 20)
    #expect(disagree.count == 1 && disagree[0].hasPrefix("the totals disagree"))
    let shrunk = SoakJudge.failures(
      [counters(seconds: 10, calls: 500, isFinal: false), counters()], seconds: 25)
    #expect(shrunk.count == 1 && shrunk[0].hasPrefix("counters went down"))
  }

  @Test func judgeChecksTheCountersOfASoakConfig() {
    let config = Matrix.soakConfig(vcpus: 2, seconds: 25)
    let ktap = [
      "Brought up 2 CPUs", "smp: online cpus=0,1 apic=0,1", "KTAP version 1", "1..1",
      "    KTAP version 1", "    # Subtest: soak", "    1..1", Self.progressLine,
    ]
    let passing = ktap + [Self.endLine, "    ok 1 cross_calls_stops_and_hotplug", "ok 1 soak", ""]
    let record = BootRecord(
      termination: .exited(33), log: SerialLog(passing.joined(separator: "\n")), qemuOutput: "",
      elapsed: .seconds(30))
    #expect(Judge.judge(record, against: config.expectations).passed)
    let erring = Self.endLine.replacingOccurrences(of: "stops_err=0", with: "stops_err=1")
      .replacingOccurrences(of: " errors=0", with: " errors=1")
    let failing = ktap + [erring, "    ok 1 cross_calls_stops_and_hotplug", "ok 1 soak", ""]
    let bad = BootRecord(
      termination: .exited(33), log: SerialLog(failing.joined(separator: "\n")), qemuOutput: "",
      elapsed: .seconds(30))
    #expect(
      Judge.judge(bad, against: config.expectations).failures == [
        "soak: 1 errors (calls 0, stops 1, hotplug 0)"
      ])
  }

  @Test func matrixKeepsAShortSoak() {
    let soak = Matrix.standard.first { $0.name == "soak-4" }
    #expect(soak == Matrix.soakConfig(vcpus: 4, seconds: 15))
    #expect(soak?.append == "ktest=soak soak_seconds=15" && soak?.smp == "4")
    #expect(soak?.timeout == .seconds(145) && soak?.expectations.soakSeconds == 15)
    #expect(
      Matrix.soakConfig(vcpus: 8, seconds: 60, seed: 7).append == "ktest=soak soak_seconds=60 torture_seed=7")
  }

  @Test func displayShowsCountersAndTroubleOnly() {
    #expect(
      SoakStream.display(Self.progressLine, machine: "soak-2")?.hasPrefix(
        "[soak-2] s=10 ops=236252 (23625/s) errors=0") == true)
    #expect(SoakStream.display(Self.endLine, machine: "soak-2")?.hasPrefix("[soak-2] end s=25") == true)
    #expect(
      SoakStream.display("    # stop torture: #3 cpu_up(2) from CPU 1: x", machine: "m")
        == "[m] # stop torture: #3 cpu_up(2) from CPU 1: x\n")
    #expect(SoakStream.display("PANIC: CPU 1: exception 14", machine: "m") != nil)
    #expect(SoakStream.display("    #   stop_cpus: 452 ran, 0 errors", machine: "m") == nil)
    #expect(SoakStream.display("  CPU 3  APIC 3  online  3291 us", machine: "m") == nil)
  }

  @Test func followerReturnsCompleteLinesAsTheFileGrows() throws {
    let path = NSTemporaryDirectory() + "soak-follow-\(UUID().uuidString).log"
    defer { try? FileManager.default.removeItem(atPath: path) }
    var follower = LogFollower(path: path)
    #expect(follower.newLines().isEmpty)  // no file yet
    try Data("one\r\ntw".utf8).write(to: URL(fileURLWithPath: path))
    #expect(follower.newLines() == ["one"])
    let handle = try #require(FileHandle(forWritingAtPath: path))
    try handle.seekToEnd()
    try handle.write(contentsOf: Data("o\nthree\n".utf8))
    try handle.close()
    #expect(follower.newLines() == ["two", "three"])
    #expect(follower.newLines().isEmpty)
    try Data("new\n".utf8).write(to: URL(fileURLWithPath: path))  // made anew, shorter
    #expect(follower.newLines() == ["new"])
  }

  @Test func optionsShareTheTimeAmongBatches() throws {
    guard case .soak(let defaults) = try Invocation.parse(["soak", "--kernel", "k"]) else {
      Issue.record("not soak")
      return
    }
    #expect(defaults.seconds == 600 && defaults.vcpus == [2, 4, 8] && defaults.jobs == 3)
    #expect(defaults.secondsPerMachine == 600 && defaults.seed == nil)
    #expect(defaults.configurations.map(\.name) == ["soak-2", "soak-4", "soak-8"])
    guard
      case .soak(let all) = try Invocation.parse([
        "soak", "--kernel", "k", "--minutes", "2", "--vcpus", "2,8", "--seed", "5",
      ])
    else { return }
    #expect(all.seconds == 120 && all.secondsPerMachine == 120 && all.vcpus == [2, 8])
    #expect(
      all.configurations.map(\.append) == [
        "ktest=soak soak_seconds=120 torture_seed=5", "ktest=soak soak_seconds=120 torture_seed=5",
      ])
    #expect(SoakOptions(common: defaults.common, seconds: 90, jobs: 2).secondsPerMachine == 45)
    #expect(SoakOptions(common: defaults.common, seconds: 90, jobs: 1).secondsPerMachine == 30)
    #expect(throws: UsageError.self) {
      try Invocation.parse(["soak", "--kernel", "k", "--minutes", "1", "--seconds", "5"])
    }
    #expect(throws: UsageError.self) { try Invocation.parse(["soak", "--kernel", "k", "--seconds", "0"]) }
    #expect(throws: UsageError.self) { try Invocation.parse(["soak", "--kernel", "k", "--minutes", "1441"]) }
  }

  @Test func totalsSayWhetherTheGoalWasReached() {
    let text = SoakRun.totalsText([
      ("soak-2", counters(calls: 6_000_000)), ("soak-4", nil), ("soak-8", counters(calls: 4_000_000)),
    ])
    #expect(text.contains("soak-4: no final counters\n"))
    #expect(text.hasSuffix("total: 10000030 operations, 0 errors (goal 10^7: reached)\n"))
  }
}
