import Foundation

// `plots`: build/bench.json as gnuplot input, one plot per table of docs/benchmarks.md.
// Each plot has a data file (<name>.dat: the vCPU count, the cache-line floor's median,
// then each metric's median and p99, in microseconds) and a script (<name>.gp) that draws
// it as SVG: latency against vCPUs, log scale on both axes, medians solid, p99s dashed,
// the floor dotted, and Linux 6.1's figures (linux-6.1.dat beside them) as reference
// points. `make plots` (scripts/plots.sh) writes them and runs gnuplot.

/// `plots`: write gnuplot data and scripts from a bench JSON.
public struct PlotOptions: Equatable, Sendable {
  /// The `make bench` JSON to read.
  public var json: String
  /// The directory for the .dat and .gp files; its `linux-6.1.dat` holds the Linux figures.
  public var out: String

  /// Creates `plots` options.
  public init(json: String = "build/bench.json", out: String = "docs/plots") {
    self.json = json
    self.out = out
  }
}

/// One Linux 6.1 reference figure (a line of linux-6.1.dat: metric, vCPUs or `any`, ns).
public struct LinuxReference: Equatable, Sendable {
  /// The metric, or a prefix of metrics (`sendstop` for `sendstop_idle` and `_busy`).
  public var metric: String
  /// The vCPU count; nil for `any` (drawn as a horizontal line).
  public var vcpus: Int?
  /// The time in nanoseconds.
  public var nanoseconds: UInt64

  /// Creates a reference figure.
  public init(metric: String, vcpus: Int?, nanoseconds: UInt64) {
    self.metric = metric
    self.vcpus = vcpus
    self.nanoseconds = nanoseconds
  }

  /// Whether this figure is a reference for `name`: the same metric, or its prefix.
  func covers(_ name: String) -> Bool {
    name == metric || name.hasPrefix(metric + "_")
  }
}

/// The plots, their data files and their gnuplot scripts.
public enum PlotData {
  /// One plot: a file name and the metrics it draws.
  public struct Plot: Equatable, Sendable {
    /// The base name of its .dat, .gp and .svg.
    public var name: String
    /// Its title.
    public var title: String
    /// The latency metrics (nanoseconds) it draws, in legend order.
    public var metrics: [String]

    /// Creates a plot.
    public init(name: String, title: String, metrics: [String]) {
      self.name = name
      self.title = title
      self.metrics = metrics
    }
  }

  /// The floor drawn on every plot.
  public static let floorMetric = "cacheline_rtt"

  /// One plot per table of docs/benchmarks.md (the stoppers' table has two). Left out,
  /// not being latencies: calls_per_second_all_to_all and idle_poll_share.
  public static let plots: [Plot] = [
    Plot(name: "bringup", title: "Bring-up", metrics: ["bringup_total", "ap_start", "bringup_floor"]),
    Plot(
      name: "crosscalls", title: "Cross-CPU calls",
      metrics: [
        "call_single_idle", "call_single_busy", "async_latency_idle", "async_latency_busy",
        "call_others_idle", "call_others_busy",
      ]),
    Plot(name: "floors", title: "IPI floors", metrics: ["ipi_rtt_idle", "ipi_rtt_busy"]),
    Plot(
      name: "threads", title: "Kernel threads",
      metrics: ["ctx_switch", "wake_idle", "wake_busy", "call_single_polled_idle"]),
    Plot(
      name: "stop", title: "Stoppers and stop_machine",
      metrics: ["stop_one_self", "stop_one_remote", "stop_two", "stop_machine", "stop_machine_irqoff"]),
    Plot(name: "hotplug", title: "CPU hotplug", metrics: ["cpu_down", "cpu_up"]),
    Plot(
      name: "sendstop", title: "smp_send_stop (rehearsed)",
      metrics: ["sendstop_idle", "sendstop_busy", "sendstop_wedged", "nmi_latency"]),
  ]

  /// Parses linux-6.1.dat: `metric vcpus|any nanoseconds` per line, `#` comments.
  /// - Returns: The figures, or nil at the first malformed line.
  public static func parseLinux(_ text: String) -> [LinuxReference]? {
    var references: [LinuxReference] = []
    for line in text.split(separator: "\n") {
      let content = line.prefix { $0 != "#" }
      let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" })
      if fields.isEmpty { continue }
      guard fields.count == 3, let ns = UInt64(fields[2]) else { return nil }
      let vcpus: Int?
      if fields[1] == "any" {
        vcpus = nil
      } else if let count = Int(fields[1]), count > 0 {
        vcpus = count
      } else {
        return nil
      }
      references.append(LinuxReference(metric: String(fields[0]), vcpus: vcpus, nanoseconds: ns))
    }
    return references
  }

  /// A generated file: its name in the output directory and its text.
  public struct File: Equatable, Sendable {
    /// The file name.
    public var name: String
    /// The contents.
    public var text: String
  }

  /// Every plot's .dat and .gp for `report`; plots with none of their metrics in it are
  /// left out, and so are metrics not in nanoseconds.
  public static func files(for report: BenchReport, linux: [LinuxReference]) -> [File] {
    var files: [File] = []
    for plot in plots {
      let present = plot.metrics.filter { metric in
        report.results.contains { $0.metric == metric && $0.unit == "ns" }
      }
      guard !present.isEmpty else { continue }
      let shown = Plot(name: plot.name, title: plot.title, metrics: present)
      files.append(File(name: plot.name + ".dat", text: dataFile(shown, report: report)))
      files.append(File(name: plot.name + ".gp", text: script(shown, report: report, linux: linux)))
    }
    return files
  }

  /// The data file: one row per vCPU count, microseconds, `?` where a figure is missing.
  static func dataFile(_ plot: Plot, report: BenchReport) -> String {
    let vcpus = vcpuCounts(report)
    var text = "# \(plot.title), from bench.json of \(report.date) (lockstep-harness plots)\n"
    text += "# microseconds; columns: vcpus \(floorMetric)_median"
    for metric in plot.metrics { text += " \(metric)_median \(metric)_p99" }
    text += "\n"
    for count in vcpus {
      var row = "\(count) " + value(floorMetric, count, \.median, report)
      for metric in plot.metrics {
        row += " " + value(metric, count, \.median, report) + " " + value(metric, count, \.p99, report)
      }
      text += row + "\n"
    }
    return text
  }

  /// The gnuplot script: run in the output directory, it writes `<name>.svg`.
  static func script(_ plot: Plot, report: BenchReport, linux: [LinuxReference]) -> String {
    let counts = vcpuCounts(report)
    let tics = counts.map(String.init).joined(separator: ", ")
    // A little room either side, so the first and last counts are off the border.
    let low = String(format: "%g", Double(counts.first ?? 1) / 1.25)
    let high = String(format: "%g", Double(counts.last ?? 1) * 1.25)
    var text = """
      # \(plot.title): generated by `lockstep-harness plots` from bench.json of \(report.date).
      # Run in this directory (make plots): writes \(plot.name).svg.
      set encoding utf8
      set terminal svg size 960,560 dynamic font "Helvetica,13" background "white"
      set output "\(plot.name).svg"
      set title "\(plot.title): QEMU TCG, bench.json of \(report.date.prefix(10))" noenhanced
      set xlabel "vCPUs (log scale)"
      set ylabel "latency (log scale)"
      set logscale x 2
      set logscale y 10
      set xrange [\(low):\(high)]
      set xtics (\(tics))
      set ytics ("10 ns" 0.01, "100 ns" 0.1, "1 µs" 1, "10 µs" 10, "100 µs" 100, "1 ms" 1000, \
      "10 ms" 10000, "100 ms" 100000, "1 s" 1000000, "10 s" 10000000)
      set mytics 10
      set offsets 0, 0, graph 0.04, graph 0.04
      set grid xtics ytics mytics lc "gray80"
      set key outside right top Left reverse noenhanced font ",11" spacing 1.1 samplen 3 width -6
      set datafile missing "?"

      """
    var clauses: [String] = []
    let data = "'\(plot.name).dat' using 1:"
    for (index, metric) in plot.metrics.enumerated() {
      let colour = index + 1
      let median = 3 + 2 * index
      clauses.append(
        data + "\(median) with linespoints lt \(colour) lw 2 dt 1 pt 7 ps 0.8"
          + " title '\(metric) median'")
      clauses.append(
        data + "\(median + 1) with linespoints lt \(colour) lw 1.5 dt 2 pt 6 ps 0.8"
          + " title '\(metric) p99'")
    }
    if !plot.metrics.contains(floorMetric) {
      clauses.append(
        data + "2 with linespoints lc 'black' lw 1.5 dt 3 pt 1 ps 0.8"
          + " title '\(floorMetric) floor (median)'")
    }
    var referenced: Set<String> = []
    for reference in linux where !referenced.contains(reference.metric) {
      guard plot.metrics.contains(where: reference.covers) else { continue }
      referenced.insert(reference.metric)
      let index = plot.metrics.firstIndex(of: reference.metric)
      let colour = index.map { "lt \($0 + 1)" } ?? "lc 'gray40'"
      let name = reference.metric
      if linux.contains(where: { $0.metric == name && $0.vcpus != nil }) {
        clauses.append(
          "'linux-6.1.dat' using 2:(strcol(1) eq '\(name)' ? $3/1000.0 : NaN)"
            + " with points \(colour) pt 5 ps 1.6 title '\(name), Linux 6.1'")
      }
      for flat in linux where flat.metric == name && flat.vcpus == nil {
        clauses.append(
          "\(microseconds(flat.nanoseconds)) with lines \(colour) lw 2.5 dt 4"
            + " title '\(name), Linux 6.1 (any count)'")
      }
    }
    text += "plot " + clauses.joined(separator: ", \\\n     ") + "\n"
    return text
  }

  private static func vcpuCounts(_ report: BenchReport) -> [Int] {
    Array(Set(report.results.map(\.vcpus))).sorted()
  }

  private static func value(
    _ metric: String, _ vcpus: Int, _ field: KeyPath<BenchFigure, UInt64>, _ report: BenchReport
  ) -> String {
    guard
      let figure = report.results.first(where: {
        $0.metric == metric && $0.vcpus == vcpus && $0.unit == "ns"
      }), figure.n > 0
    else { return "?" }
    return microseconds(figure[keyPath: field])
  }

  /// Nanoseconds as microseconds, exact to the nanosecond (`1234` is `1.234`).
  public static func microseconds(_ ns: UInt64) -> String {
    let fraction = ns % 1000
    guard fraction != 0 else { return "\(ns / 1000)" }
    var digits = String(fraction)
    digits = String(repeating: "0", count: 3 - digits.count) + digits
    while digits.hasSuffix("0") { digits.removeLast() }
    return "\(ns / 1000).\(digits)"
  }
}

extension Commands {
  /// `plots`: reads the bench JSON and linux-6.1.dat in `options.out`, writes every
  /// plot's .dat and .gp there, one line per file to `sink`.
  /// - Returns: 0 on success; 1 if a file cannot be read, parsed or written.
  public static func plots(_ options: PlotOptions, sink: ReportSink) -> Int32 {
    guard let data = FileManager.default.contents(atPath: options.json),
      let report = try? JSONDecoder().decode(BenchReport.self, from: data)
    else {
      Console.standardError("lockstep-harness: cannot read a bench report from \(options.json)\n")
      return 1
    }
    let linuxPath = options.out + "/linux-6.1.dat"
    var linux: [LinuxReference] = []
    if let linuxData = FileManager.default.contents(atPath: linuxPath) {
      guard let parsed = PlotData.parseLinux(String(decoding: linuxData, as: UTF8.self)) else {
        Console.standardError("lockstep-harness: \(linuxPath): lines must be 'metric vcpus|any ns'\n")
        return 1
      }
      linux = parsed
    } else {
      sink("no \(linuxPath): plots without Linux 6.1 figures\n")
    }
    do {
      try FileManager.default.createDirectory(
        atPath: options.out, withIntermediateDirectories: true)
      for file in PlotData.files(for: report, linux: linux) {
        let path = options.out + "/" + file.name
        try Data(file.text.utf8).write(to: URL(fileURLWithPath: path))
        sink("wrote \(path)\n")
      }
    } catch {
      Console.standardError("lockstep-harness: cannot write to \(options.out): \(error)\n")
      return 1
    }
    return 0
  }
}
