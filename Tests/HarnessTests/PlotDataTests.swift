import Foundation
import HarnessKit
import Testing

// `plots`: a small bench JSON as gnuplot data files and scripts, and linux-6.1.dat.

@Suite("PlotData")
struct PlotDataTests {
  private let json = """
    {
      "date" : "2026-12-02T04:31:46Z",
      "qemu" : "QEMU emulator version 7.2.22",
      "results" : [
        { "metric" : "cacheline_rtt", "unit" : "ns", "vcpus" : 2, "n" : 1000,
          "median" : 200, "p99" : 991, "min" : 90, "max" : 134141 },
        { "metric" : "stop_machine", "unit" : "ns", "vcpus" : 2, "n" : 500,
          "median" : 52048, "p99" : 1785397, "min" : 1502, "max" : 1785397,
          "floor" : "cacheline_rtt", "floor_ratio" : 260.24, "linux_target_ns" : 3700000 },
        { "metric" : "cacheline_rtt", "unit" : "ns", "vcpus" : 8, "n" : 1000,
          "median" : 230, "p99" : 721, "min" : 90, "max" : 9000 },
        { "metric" : "stop_machine", "unit" : "ns", "vcpus" : 8, "n" : 500,
          "median" : 931000, "p99" : 7100000, "min" : 1502, "max" : 9100000 },
        { "metric" : "stop_one_remote", "unit" : "ns", "vcpus" : 8, "n" : 1000,
          "median" : 26000, "p99" : 107000, "min" : 16985, "max" : 4021575 },
        { "metric" : "calls_per_second_all_to_all", "unit" : "calls/s", "vcpus" : 8, "n" : 5,
          "median" : 36850, "p99" : 40000, "min" : 30000, "max" : 40000 }
      ]
    }
    """

  private let linuxText = """
    # a comment
    stop_machine      2    3700000
    stop_machine      8    37000000   # trailing comment
    stop_one_remote   any  300000

    cpu_down          2    51000000
    """

  private func report() throws -> BenchReport {
    try JSONDecoder().decode(BenchReport.self, from: Data(json.utf8))
  }

  private func file(_ name: String, in files: [PlotData.File]) -> String? {
    files.first { $0.name == name }?.text
  }

  @Test func parsesLinuxFigures() throws {
    let linux = try #require(PlotData.parseLinux(linuxText))
    #expect(
      linux == [
        LinuxReference(metric: "stop_machine", vcpus: 2, nanoseconds: 3_700_000),
        LinuxReference(metric: "stop_machine", vcpus: 8, nanoseconds: 37_000_000),
        LinuxReference(metric: "stop_one_remote", vcpus: nil, nanoseconds: 300_000),
        LinuxReference(metric: "cpu_down", vcpus: 2, nanoseconds: 51_000_000),
      ])
    #expect(PlotData.parseLinux("stop_machine 2") == nil)
    #expect(PlotData.parseLinux("stop_machine two 3700000") == nil)
    #expect(PlotData.parseLinux("stop_machine 0 3700000") == nil)
  }

  @Test func theCommittedLinuxFileParses() throws {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("../../docs/plots/linux-6.1.dat")
    let text = try String(contentsOf: url, encoding: .utf8)
    let linux = try #require(PlotData.parseLinux(text))
    #expect(linux.contains(LinuxReference(metric: "stop_machine", vcpus: 8, nanoseconds: 37_000_000)))
    // Every figure is drawn on some plot.
    for reference in linux {
      #expect(
        PlotData.plots.contains { plot in
          plot.metrics.contains { $0 == reference.metric || $0.hasPrefix(reference.metric + "_") }
        }, "\(reference.metric)")
    }
  }

  @Test func onlyPlotsWithFiguresAreWritten() throws {
    let files = PlotData.files(for: try report(), linux: [])
    #expect(files.map(\.name) == ["stop.dat", "stop.gp"])
  }

  @Test func dataFileHasMicrosecondsAndMarksMissingFigures() throws {
    let files = PlotData.files(for: try report(), linux: [])
    let data = try #require(file("stop.dat", in: files))
    let rows = data.split(separator: "\n").filter { !$0.hasPrefix("#") }
    #expect(
      data.contains(
        "# microseconds; columns: vcpus cacheline_rtt_median stop_one_remote_median"
          + " stop_one_remote_p99 stop_machine_median stop_machine_p99\n"
      ))
    #expect(rows == ["2 0.2 ? ? 52.048 1785.397", "8 0.23 26 107 931 7100"])
  }

  @Test func scriptDrawsMediansP99sFloorAndLinux() throws {
    let linux = try #require(PlotData.parseLinux(linuxText))
    let files = PlotData.files(for: try report(), linux: linux)
    let script = try #require(file("stop.gp", in: files))
    #expect(script.contains("set output \"stop.svg\""))
    #expect(script.contains("set logscale y 10"))
    #expect(script.contains("set xtics (2, 8)"))
    #expect(script.contains("set xrange [1.6:10]"))
    #expect(script.contains("set ylabel \"latency (log scale)\""))
    #expect(script.contains("\"1 µs\" 1, \"10 µs\" 10, \"100 µs\" 100, \"1 ms\" 1000"))
    #expect(script.contains("'stop.dat' using 1:3 with linespoints lt 1 lw 2 dt 1"))
    #expect(
      script.contains("using 1:4 with linespoints lt 1 lw 1.5 dt 2 pt 6 ps 0.8 title 'stop_one_remote p99'"))
    #expect(
      script.contains("using 1:5 with linespoints lt 2 lw 2 dt 1 pt 7 ps 0.8 title 'stop_machine median'"))
    #expect(script.contains("'stop.dat' using 1:2 with linespoints lc 'black'"))
    #expect(script.contains("title 'cacheline_rtt floor (median)'"))
    #expect(
      script.contains(
        "'linux-6.1.dat' using 2:(strcol(1) eq 'stop_machine' ? $3/1000.0 : NaN)"
          + " with points lt 2 pt 5 ps 1.6 title 'stop_machine, Linux 6.1'"
      ))
    #expect(
      script.contains("300 with lines lt 1 lw 2.5 dt 4 title 'stop_one_remote, Linux 6.1 (any count)'"))
    // cpu_down is not on this plot.
    #expect(!script.contains("cpu_down"))
  }

  @Test func microseconds() {
    #expect(PlotData.microseconds(0) == "0")
    #expect(PlotData.microseconds(1000) == "1")
    #expect(PlotData.microseconds(1234) == "1.234")
    #expect(PlotData.microseconds(1050) == "1.05")
    #expect(PlotData.microseconds(7) == "0.007")
  }

  @Test func parsesPlotsOptions() throws {
    #expect(try Invocation.parse(["plots"]) == .plots(PlotOptions()))
    #expect(
      try Invocation.parse(["plots", "--json", "b.json", "--out", "/tmp/p"])
        == .plots(PlotOptions(json: "b.json", out: "/tmp/p")))
    #expect(throws: UsageError(message: "unknown flag --kernel")) {
      try Invocation.parse(["plots", "--kernel", "k"])
    }
  }
}
