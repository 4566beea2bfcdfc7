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
    #expect(table.contains("  ipi_rtt        ns         4         310        1000     2.82\n"))
    #expect(table.contains("  bringup_total  us         1        5000        5000        -\n"))
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
    #expect(try JSONDecoder().decode(BenchReport.self, from: report.json()) == report)
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
