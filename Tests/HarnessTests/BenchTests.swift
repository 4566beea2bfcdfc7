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
    #expect(BenchRun.config(vcpus: 64, boot: 1).timeout == .seconds(90))
  }
}
