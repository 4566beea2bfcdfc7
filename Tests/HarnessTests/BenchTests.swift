import Foundation
import HarnessKit
import Testing

// Benchmark lines, pooling across boots, nearest-rank statistics, the table and the JSON.

@Suite("Bench")
struct BenchTests {
  private let bootA = SerialLog(
    """
    bench cacheline_rtt ns 100 120 110
    bench ipi_rtt ns 300 320
    bench-note TCG timings are not hardware timings
    bench bringup_total us 5000

    """)
  private let bootB = SerialLog(
    """
    bench cacheline_rtt ns 130
    bench ipi_rtt ns 310 1000
    bench-note TCG timings are not hardware timings
    bench broken ns 12 x

    """)

  @Test func parsesBenchLines() {
    #expect(
      BenchLine.parse("bench ipi_rtt cycles 1 2 3")
        == .samples(metric: "ipi_rtt", unit: "cycles", values: [1, 2, 3]))
    #expect(BenchLine.parse("bench-note hello world") == .note("hello world"))
    #expect(BenchLine.parse("bench ipi_rtt cycles") == nil)
    #expect(BenchLine.parse("bench ipi_rtt cycles -1") == nil)
    #expect(BenchLine.parse("benchmark x y 1") == nil)
  }

  @Test func poolsSamplesPerMetricAndVCPUsAcrossBoots() {
    var pool = BenchPool()
    pool.add(bootA, vcpus: 4)
    pool.add(bootB, vcpus: 4)
    pool.add(bootA, vcpus: 2)
    #expect(pool.samples[BenchPool.Key(vcpus: 4, metric: "cacheline_rtt")] == [100, 120, 110, 130])
    #expect(pool.samples[BenchPool.Key(vcpus: 4, metric: "broken")] == nil)
    #expect(pool.notes == ["TCG timings are not hardware timings"])
    let figures = pool.figures
    #expect(figures.map(\.vcpus) == [2, 2, 2, 4, 4, 4])
    #expect(figures.map(\.metric).prefix(3) == ["cacheline_rtt", "ipi_rtt", "bringup_total"])
    let ipi = figures.first { $0.vcpus == 4 && $0.metric == "ipi_rtt" }!
    #expect(ipi.n == 4 && ipi.median == 310 && ipi.p99 == 1000 && ipi.min == 300)
    #expect(ipi.floorRatio == 310.0 / 110.0)
  }

  @Test func floorRatioNeedsTwoVCPUsAndTheSameUnit() {
    var pool = BenchPool()
    pool.add(bootA, vcpus: 1)
    pool.add(bootA, vcpus: 2)
    let figures = pool.figures
    #expect(figures.filter { $0.vcpus == 1 }.allSatisfy { $0.floorRatio == nil })
    #expect(figures.first { $0.vcpus == 2 && $0.metric == "cacheline_rtt" }?.floorRatio == 1)
    #expect(figures.first { $0.vcpus == 2 && $0.metric == "bringup_total" }?.floorRatio == nil)
  }

  @Test func tablePrintsEachVCPUBlockAndNotesOnce() {
    var pool = BenchPool()
    pool.add(bootA, vcpus: 2)
    pool.add(bootB, vcpus: 2)
    let table = BenchTable.render(pool.figures, notes: pool.notes)
    #expect(table.contains("vcpus 2\n"))
    #expect(table.contains("/floor  floor\n"))
    #expect(table.contains("  ipi_rtt        ns         4         310        1000     2.82  cacheline_rtt\n"))
    #expect(table.contains("  bringup_total  us         1        5000        5000        -  -\n"))
    #expect(table.components(separatedBy: "note: TCG timings").count == 2)
    #expect(BenchTable.render([], notes: []) == "no benchmark figures\n")
  }

  @Test func jsonHasTheDocumentedShape() throws {
    var pool = BenchPool()
    pool.add(bootA, vcpus: 8)
    let report = BenchReport(qemu: "QEMU emulator version 7.2.22", date: "d", results: pool.figures)
    let object = try JSONSerialization.jsonObject(with: try report.json()) as? [String: Any]
    #expect(object?["qemu"] as? String == "QEMU emulator version 7.2.22")
    let first = (object?["results"] as? [[String: Any]])?.first
    #expect(first?["vcpus"] as? Int == 8 && first?["metric"] as? String == "cacheline_rtt")
    #expect(first?["unit"] as? String == "ns" && first?["n"] as? Int == 3)
    #expect(first?["median"] as? Int == 110 && first?["p99"] as? Int == 120)
    #expect(first?["floor_ratio"] as? Double == 1)
    #expect(first?["floor"] as? String == "cacheline_rtt")
    #expect(try JSONDecoder().decode(BenchReport.self, from: report.json()) == report)
  }

  @Test func eachMetricNamesItsFloorByOneRule() {
    #expect(BenchFloor.metric(for: "call_single_busy") == "ipi_rtt_busy")
    #expect(BenchFloor.metric(for: "call_others_idle") == "ipi_rtt_idle")
    #expect(BenchFloor.metric(for: "call_single") == "cacheline_rtt", "no target state, no IPI floor")
    #expect(BenchFloor.metric(for: "async_latency_busy") == "cacheline_rtt")
    #expect(BenchFloor.metric(for: "calls_per_second_all_to_all") == "cacheline_rtt")
    #expect(BenchFloor.metric(for: "ipi_rtt_busy") == "cacheline_rtt")
    #expect(BenchFloor.metric(for: "bringup_total") == "bringup_floor")
    #expect(BenchFloor.metric(for: "ap_start") == "cacheline_rtt")
  }

  @Test func ratiosUseTheFloorOfTheSameStateAndVCPUCount() {
    let boot = SerialLog(
      """
      bench cacheline_rtt ns 100
      bench bringup_floor ns 2000
      bench bringup_total ns 5000
      bench ipi_rtt_idle ns 1000
      bench ipi_rtt_busy ns 400
      bench call_single_idle ns 1500
      bench call_single_busy ns 500
      bench async_latency_busy ns 300

      """)
    let four = SerialLog("bench ipi_rtt_busy ns 800\nbench call_single_busy ns 1000\n")
    var pool = BenchPool()
    pool.add(boot, vcpus: 2)
    pool.add(four, vcpus: 4)
    func figure(_ vcpus: Int, _ metric: String) -> BenchFigure? {
      pool.figures.first { $0.vcpus == vcpus && $0.metric == metric }
    }
    #expect(figure(2, "call_single_idle")?.floorRatio == 1.5)
    #expect(figure(2, "call_single_idle")?.floor == "ipi_rtt_idle")
    #expect(figure(2, "call_single_busy")?.floorRatio == 1.25)
    #expect(figure(2, "call_single_busy")?.floor == "ipi_rtt_busy")
    #expect(figure(2, "bringup_total")?.floorRatio == 2.5)
    #expect(figure(2, "bringup_total")?.floor == "bringup_floor")
    #expect(figure(2, "async_latency_busy")?.floorRatio == 3)
    #expect(figure(2, "ipi_rtt_busy")?.floor == "cacheline_rtt")
    // At 4 vCPUs: its own IPI floor, not the 2-vCPU one; no cache line there, no ratio.
    #expect(figure(4, "call_single_busy")?.floorRatio == 1.25)
    #expect(figure(4, "ipi_rtt_busy")?.floorRatio == nil)
    #expect(figure(4, "ipi_rtt_busy")?.floor == nil)
    let table = BenchTable.render(pool.figures, notes: [])
    #expect(table.contains("     1.25  ipi_rtt_busy\n"))
    #expect(table.contains("     2.50  bringup_floor\n"))
  }

  @Test func benchRunPoolsOnlyPassingBoots() {
    let reports = Reports()
    let (pool, failed) = BenchRun.run(vcpus: [2], boots: 3, sink: reports.sink) { config in
      let panicked = config.name == "bench-2-2"
      return record("bench ipi_rtt ns \(panicked ? 9999 : 10)\n", status: panicked ? 37 : 33)
    }
    #expect(failed == 1)
    #expect(pool.samples[BenchPool.Key(vcpus: 2, metric: "ipi_rtt")] == [10, 10])
    #expect(reports.all.count == 3 && reports.all[1].hasPrefix("FAIL  bench-2-2  (expected pass"))
    #expect(BenchRun.config(vcpus: 64, boot: 1).append == "bench")
    #expect(BenchRun.config(vcpus: 64, boot: 1).timeout == .seconds(316))
    #expect(BenchRun.config(vcpus: 2, boot: 1).timeout == .seconds(68))
  }
}

@Suite("Bench: stop figures")
struct StopBenchTests {
  /// Every stop figure, as a bench boot at `vcpus` prints it, beside its floors: each
  /// figure's samples are its vCPU count times a fixed factor.
  private func boot(vcpus: Int) -> String {
    let figures: [(String, UInt64)] = [
      ("cacheline_rtt", 100), ("ipi_rtt_idle", 10_000), ("ipi_rtt_busy", 5_000),
      ("stop_one_self", 3_000), ("stop_one_remote", 20_000), ("stop_one_remote_busy", 7_500),
      ("stop_two", 30_000), ("stop_machine", 500_000), ("stop_machine_busy", 900_000),
      ("stop_machine_irqoff", 40_000), ("cpu_down", 2_000_000), ("cpu_up", 1_000_000),
    ]
    return figures.map { metric, value in
      "bench \(metric) ns \(value * UInt64(vcpus)) \(value * UInt64(vcpus))\n"
    }.joined()
  }

  @Test func roundTripsTakeTheIPIFloorAndTheRestTheCacheLine() {
    #expect(BenchFloor.metric(for: "stop_one_remote") == "ipi_rtt_idle", "targets idle unless stated")
    #expect(BenchFloor.metric(for: "stop_one_remote_busy") == "ipi_rtt_busy")
    #expect(BenchFloor.metric(for: "stop_one_remote_idle") == "ipi_rtt_idle")
    #expect(BenchFloor.metric(for: "stop_two") == "ipi_rtt_idle")
    #expect(BenchFloor.metric(for: "stop_two_busy") == "ipi_rtt_busy")
    for metric in [
      "stop_one_self", "stop_one_self_busy", "stop_machine", "stop_machine_busy",
      "stop_machine_irqoff", "stop_machine_irqoff_idle", "cpu_down", "cpu_up", "cpu_up_idle",
    ] {
      #expect(BenchFloor.metric(for: metric) == "cacheline_rtt", "\(metric)")
    }
    #expect(BenchFloor.metric(for: "call_single") == "cacheline_rtt", "unchanged for calls")
    #expect(BenchFloor.baseMetric("stop_machine_busy") == "stop_machine")
    #expect(BenchFloor.baseMetric("stop_machine_irqoff") == "stop_machine_irqoff")
  }

  @Test func linuxTargetsByMetricAndVCPUCount() {
    func target(_ metric: String, _ vcpus: Int, _ unit: String = "ns") -> UInt64? {
      LinuxTarget.nanoseconds(for: metric, vcpus: vcpus, unit: unit)
    }
    #expect(target("stop_machine", 2) == 3_700_000 && target("stop_machine", 4) == 13_000_000)
    #expect(target("stop_machine", 8) == 37_000_000 && target("stop_machine", 16) == nil)
    #expect(target("stop_machine_idle", 8) == 37_000_000, "a state suffix keeps the target")
    #expect(target("stop_machine_irqoff", 8) == nil, "not stop_machine's target")
    #expect(target("stop_one_remote", 2) == 300_000 && target("stop_one_remote_busy", 64) == 300_000)
    #expect(target("stop_one_remote", 1) == nil)
    #expect(target("cpu_down", 2) == 51_000_000 && target("cpu_up", 2) == 35_000_000)
    #expect(target("cpu_down", 4) == nil && target("stop_two", 2) == nil)
    #expect(target("stop_machine", 2, "us") == nil, "only nanoseconds compare")
  }

  @Test func pooledAtEveryDefaultVCPUCountWithFloorsAndTargets() {
    let counts = [2, 4, 8, 16, 64]
    let (pool, failed) = BenchRun.run(vcpus: counts, boots: 2, sink: { _ in }) { config in
      record(boot(vcpus: Int(config.smp)!))
    }
    #expect(failed == 0)
    let figures = pool.figures
    func figure(_ vcpus: Int, _ metric: String) -> BenchFigure? {
      figures.first { $0.vcpus == vcpus && $0.metric == metric }
    }
    for vcpus in counts {
      for metric in [
        "stop_one_self", "stop_one_remote", "stop_one_remote_busy", "stop_two", "stop_machine",
        "stop_machine_busy", "stop_machine_irqoff", "cpu_down", "cpu_up",
      ] {
        #expect(figure(vcpus, metric)?.n == 4, "\(metric) at \(vcpus)")
      }
    }
    #expect(figure(4, "stop_one_remote")?.floor == "ipi_rtt_idle")
    #expect(figure(4, "stop_one_remote")?.floorRatio == 2)
    #expect(figure(4, "stop_one_remote_busy")?.floorRatio == 1.5)
    #expect(figure(8, "stop_two")?.floorRatio == 3)
    #expect(figure(8, "stop_machine_irqoff")?.floor == "cacheline_rtt")
    #expect(figure(8, "stop_machine_irqoff")?.floorRatio == 400)
    // 8 vCPUs: 4 ms against Linux's 37 ms; 2 vCPUs: remote stop 40 us against 300 us.
    #expect(figure(8, "stop_machine")?.linuxTarget == 37_000_000)
    #expect(figure(8, "stop_machine")?.linuxRatio == 4_000_000.0 / 37_000_000)
    #expect(figure(2, "stop_one_remote")?.linuxRatio == 40_000.0 / 300_000)
    #expect(figure(2, "cpu_up")?.linuxRatio == 2_000_000.0 / 35_000_000)
    #expect(figure(16, "stop_machine")?.linuxTarget == nil)
    #expect(figure(4, "stop_two")?.linuxRatio == nil)
  }

  @Test func tableAndJSONShowTheLinuxTargets() throws {
    var pool = BenchPool()
    pool.add(SerialLog(boot(vcpus: 2)), vcpus: 2)
    let table = BenchTable.render(pool.figures, notes: ["n"])
    #expect(table.contains("\nLinux 6.1 target (median / target; below 1 is faster)\n"))
    #expect(table.contains("  vcpus  metric                unit      median      target  /target\n"))
    #expect(table.contains("      2  stop_machine          ns       1000000     3700000     0.27\n"))
    #expect(table.contains("      2  stop_machine_busy     ns       1800000     3700000     0.49\n"))
    #expect(table.contains("      2  cpu_down              ns       4000000    51000000     0.08\n"))
    #expect(!table.contains("      2  stop_two "))
    #expect(table.hasSuffix("0.08\n\nnote: n\n") || table.contains("\n\nnote: n\n"))
    let report = BenchReport(qemu: "q", date: "d", results: pool.figures)
    let object = try JSONSerialization.jsonObject(with: try report.json()) as? [String: Any]
    let results = object?["results"] as? [[String: Any]] ?? []
    let machine = results.first { $0["metric"] as? String == "stop_machine" }
    #expect(machine?["linux_target_ns"] as? Int == 3_700_000)
    #expect(machine?["linux_ratio"] as? Double == 1_000_000.0 / 3_700_000)
    #expect(results.first { $0["metric"] as? String == "stop_two" }?["linux_target_ns"] == nil)
    #expect(try JSONDecoder().decode(BenchReport.self, from: report.json()) == report)
    // Without targets the table is as before: no Linux block.
    #expect(!BenchTable.render(BenchPool().figures, notes: []).contains("Linux"))
  }
}

@Suite("Bench: send-stop figures")
struct SendStopBenchTests {
  /// The send-stop figures as a bench boot at `vcpus` prints them, beside the floors:
  /// each figure's samples are its vCPU count times a fixed factor, and a p99-sized
  /// outlier.
  private func boot(vcpus: Int) -> String {
    let figures: [(String, UInt64)] = [
      ("cacheline_rtt", 100), ("ipi_rtt_idle", 10_000), ("ipi_rtt_busy", 5_000),
      ("sendstop_idle", 5_000), ("sendstop_busy", 2_500), ("sendstop_wedged", 1_300_000),
      ("nmi_latency", 1_000),
    ]
    return figures.map { metric, value in
      "bench \(metric) ns \(value * UInt64(vcpus)) \(value * UInt64(vcpus)) \(value * UInt64(vcpus) * 2)\n"
    }.joined()
  }

  @Test func sendStopTakesTheIPIFloorOfItsStateAndTheWedgedOneTheCacheLine() {
    #expect(BenchFloor.metric(for: "sendstop_idle") == "ipi_rtt_idle")
    #expect(BenchFloor.metric(for: "sendstop_busy") == "ipi_rtt_busy")
    #expect(
      BenchFloor.metric(for: "sendstop_wedged") == "cacheline_rtt", "timeout plus NMI: no floor of its shape")
    #expect(BenchFloor.metric(for: "nmi_latency") == "cacheline_rtt")
    #expect(BenchFloor.baseMetric("sendstop_busy") == "sendstop")
    #expect(BenchFloor.baseMetric("sendstop_wedged") == "sendstop_wedged")
  }

  @Test func linuxTargetsAndGoalsByMetricAndVCPUCount() {
    func target(_ metric: String, _ vcpus: Int) -> UInt64? {
      LinuxTarget.nanoseconds(for: metric, vcpus: vcpus, unit: "ns")
    }
    func goal(_ metric: String, _ vcpus: Int, _ unit: String = "ns") -> UInt64? {
      LinuxTarget.goal(for: metric, vcpus: vcpus, unit: unit)
    }
    #expect(target("sendstop_idle", 8) == 600_000 && target("sendstop_busy", 8) == 600_000)
    #expect(goal("sendstop_idle", 8) == 70_000 && goal("sendstop_busy", 8) == 70_000)
    #expect(target("sendstop_idle", 4) == nil && goal("sendstop_busy", 64) == nil)
    #expect(target("sendstop_wedged", 2) == 1_000_000_000 && target("sendstop_wedged", 64) == 1_000_000_000)
    #expect(goal("sendstop_wedged", 2) == 20_000_000 && goal("sendstop_wedged", 64) == 20_000_000)
    #expect(goal("sendstop_wedged", 1) == nil && goal("sendstop_wedged", 8, "us") == nil)
    #expect(target("nmi_latency", 8) == nil && goal("nmi_latency", 8) == nil)
    #expect(goal("stop_machine", 8) == nil, "a target relative to Linux's only has no goal")
  }

  @Test func pooledAtEveryDefaultVCPUCountWithFloorsTargetsAndGoals() {
    let counts = [2, 4, 8, 16, 64]
    let (pool, failed) = BenchRun.run(vcpus: counts, boots: 2, sink: { _ in }) { config in
      record(boot(vcpus: Int(config.smp)!))
    }
    #expect(failed == 0)
    let figures = pool.figures
    func figure(_ vcpus: Int, _ metric: String) -> BenchFigure? {
      figures.first { $0.vcpus == vcpus && $0.metric == metric }
    }
    for vcpus in counts {
      for metric in ["sendstop_idle", "sendstop_busy", "sendstop_wedged", "nmi_latency"] {
        #expect(figure(vcpus, metric)?.n == 6, "\(metric) at \(vcpus)")
      }
    }
    // Median x*vcpus, p99 2x*vcpus; the floors are medians too.
    #expect(figure(4, "sendstop_idle")?.floor == "ipi_rtt_idle")
    #expect(figure(4, "sendstop_idle")?.floorRatio == 0.5)
    #expect(figure(4, "sendstop_busy")?.floor == "ipi_rtt_busy")
    #expect(figure(4, "sendstop_busy")?.floorRatio == 0.5)
    #expect(figure(16, "nmi_latency")?.floorRatio == 10)
    #expect(figure(8, "sendstop_wedged")?.floor == "cacheline_rtt")
    // 8 vCPUs: idle 40 us (p99 80 us) against Linux's 0.6 ms and the 70 us goal.
    let idle8 = figure(8, "sendstop_idle")
    #expect(idle8?.median == 40_000 && idle8?.p99 == 80_000)
    #expect(idle8?.linuxTarget == 600_000 && idle8?.linuxRatio == 40_000.0 / 600_000)
    #expect(idle8?.goal == 70_000 && idle8?.goalRatio == 80_000.0 / 70_000)
    #expect(figure(8, "sendstop_busy")?.goalRatio == 40_000.0 / 70_000)
    #expect(figure(2, "sendstop_idle")?.goal == nil && figure(64, "sendstop_busy")?.linuxTarget == nil)
    // Wedged at 2 vCPUs: 2.6 ms, p99 5.2 ms, against 1 s and 20 ms; at 16: p99 41.6 ms.
    #expect(figure(2, "sendstop_wedged")?.linuxRatio == 2_600_000.0 / 1_000_000_000)
    #expect(figure(2, "sendstop_wedged")?.goalRatio == 5_200_000.0 / 20_000_000)
    #expect(figure(16, "sendstop_wedged")?.goalRatio == 41_600_000.0 / 20_000_000)
    #expect(figure(8, "nmi_latency")?.goal == nil && figure(8, "nmi_latency")?.linuxTarget == nil)
  }

  @Test func tableAndJSONShowTheGoals() throws {
    var pool = BenchPool()
    pool.add(SerialLog(boot(vcpus: 8)), vcpus: 8)
    let table = BenchTable.render(pool.figures, notes: ["n"])
    #expect(
      table.contains("  sendstop_idle    ns         3       40000       80000     0.50  ipi_rtt_idle\n"))
    // 10.4 ms over a 800 ns cache line: no decimals from 1000 up, so the column holds.
    #expect(
      table.contains("  sendstop_wedged  ns         3    10400000    20800000    13000  cacheline_rtt\n"))
    #expect(BenchTable.ratioText(999.994) == "999.99" && BenchTable.ratioText(431_120.44) == "431120")
    #expect(table.contains("      8  sendstop_idle    ns         40000      600000     0.07\n"))
    #expect(table.contains("\nGoal (p99 / goal; at most 1 is met)\n"))
    #expect(table.contains("  vcpus  metric           unit      median         p99        goal  p99/goal\n"))
    #expect(table.contains("      8  sendstop_idle    ns         40000       80000       70000      1.14\n"))
    #expect(table.contains("      8  sendstop_busy    ns         20000       40000       70000      0.57\n"))
    #expect(table.contains("      8  sendstop_wedged  ns      10400000    20800000    20000000      1.04\n"))
    #expect(!table.contains("      8  nmi_latency      ns         8000"), "no target, no goal line")
    #expect(table.contains("1.04\n\nnote: n\n"), "goals come after the Linux block, before the notes")
    let report = BenchReport(qemu: "q", date: "d", results: pool.figures)
    let object = try JSONSerialization.jsonObject(with: try report.json()) as? [String: Any]
    let results = object?["results"] as? [[String: Any]] ?? []
    let wedged = results.first { $0["metric"] as? String == "sendstop_wedged" }
    #expect(wedged?["goal_ns"] as? Int == 20_000_000)
    #expect(wedged?["goal_p99_ratio"] as? Double == 20_800_000.0 / 20_000_000)
    #expect(wedged?["linux_target_ns"] as? Int == 1_000_000_000)
    let nmi = results.first { $0["metric"] as? String == "nmi_latency" }
    #expect(nmi?["goal_ns"] == nil && nmi?["goal_p99_ratio"] == nil)
    #expect(try JSONDecoder().decode(BenchReport.self, from: report.json()) == report)
    // Without goals the table has no goal block.
    var stopOnly = BenchPool()
    stopOnly.add(SerialLog("bench stop_machine ns 1000\n"), vcpus: 2)
    #expect(!BenchTable.render(stopOnly.figures, notes: []).contains("Goal"))
  }
}
