import Foundation
import LockstepKernel

// Benchmark figures: the table `bench` prints and the JSON it writes.

/// The summary of one metric at one vCPU count, pooled across boots.
public struct BenchFigure: Codable, Equatable, Sendable {
  /// The vCPU count.
  public var vcpus: Int
  /// The metric's name, as the kernel printed it.
  public var metric: String
  /// The unit, as the kernel printed it.
  public var unit: String
  /// How many samples.
  public var n: Int
  /// Nearest-rank median.
  public var median: UInt64
  /// Nearest-rank 99th percentile.
  public var p99: UInt64
  /// Smallest sample.
  public var min: UInt64
  /// Largest sample.
  public var max: UInt64
  /// The median over the floor metric's median at the same vCPU count, when meaningful.
  public var floorRatio: Double?
  /// The floor metric `floorRatio` divides by (see `BenchFloor`); nil when there is no ratio.
  public var floor: String?
  /// Linux 6.1's time for the same operation at the same vCPU count, in nanoseconds
  /// (`LinuxTarget`); nil where there is none.
  public var linuxTarget: UInt64?
  /// The median over `linuxTarget`: below 1, faster than Linux; nil without a target.
  public var linuxRatio: Double?
  /// The goal for the same operation at the same vCPU count, in nanoseconds
  /// (`LinuxTarget.goal`); nil where there is none.
  public var goal: UInt64?
  /// The p99 over `goal`: at most 1, the goal is met; nil without a goal.
  public var goalRatio: Double?

  private enum CodingKeys: String, CodingKey {
    case vcpus, metric, unit, n, median, p99, min, max, floor
    case floorRatio = "floor_ratio"
    case linuxTarget = "linux_target_ns"
    case linuxRatio = "linux_ratio"
    case goal = "goal_ns"
    case goalRatio = "goal_p99_ratio"
  }

  /// Creates a figure from a summary.
  public init(
    vcpus: Int, metric: String, unit: String, summary: Statistics.Summary, floorRatio: Double?,
    floor: String? = nil, linuxTarget: UInt64? = nil, goal: UInt64? = nil
  ) {
    self.vcpus = vcpus
    self.metric = metric
    self.unit = unit
    n = summary.count
    median = summary.median
    p99 = summary.p99
    min = summary.min
    max = summary.max
    self.floorRatio = floorRatio
    self.floor = floor
    self.linuxTarget = linuxTarget
    linuxRatio = linuxTarget.flatMap { $0 > 0 ? Double(summary.median) / Double($0) : nil }
    self.goal = goal
    goalRatio = goal.flatMap { $0 > 0 ? Double(summary.p99) / Double($0) : nil }
  }
}

/// The JSON document `bench` writes.
public struct BenchReport: Codable, Equatable, Sendable {
  /// The first line of `qemu --version`.
  public var qemu: String
  /// When the benchmark ran, ISO 8601.
  public var date: String
  /// Every figure.
  public var results: [BenchFigure]

  /// Creates a report.
  public init(qemu: String, date: String, results: [BenchFigure]) {
    self.qemu = qemu
    self.date = date
    self.results = results
  }

  /// The report as pretty-printed JSON with sorted keys, so runs diff cleanly.
  public func json() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return try encoder.encode(self)
  }
}

/// The table `bench` prints.
public enum BenchTable {
  /// One block per vCPU count, one row per metric (unit, n, median, p99, ratio to its
  /// floor, the floor's name), then the figures that have a Linux 6.1 target beside it
  /// (`LinuxTarget`), then those with a goal of the issue's, then the kernel's notes,
  /// each once.
  /// - Parameters:
  ///   - figures: The figures, ordered by vCPU count.
  ///   - notes: Distinct `bench-note` texts.
  /// - Returns: The table, ending in a newline (empty input gives a one-line message).
  public static func render(_ figures: [BenchFigure], notes: [String]) -> String {
    var text = figures.isEmpty ? "no benchmark figures\n" : ""
    let metricWidth = Swift.max(6, figures.map(\.metric.count).max() ?? 0)
    let unitWidth = Swift.max(4, figures.map(\.unit.count).max() ?? 0)
    var current: Int?
    for figure in figures {
      if figure.vcpus != current {
        current = figure.vcpus
        text +=
          "\nvcpus \(figure.vcpus)\n  " + left("metric", metricWidth) + "  "
          + left("unit", unitWidth) + right("n", 8) + right("median", 12) + right("p99", 12)
          + right("/floor", 9) + "  floor\n"
      }
      let ratio = figure.floorRatio.map(ratioText) ?? "-"
      text +=
        "  " + left(figure.metric, metricWidth) + "  " + left(figure.unit, unitWidth)
        + right("\(figure.n)", 8) + right("\(figure.median)", 12) + right("\(figure.p99)", 12)
        + right(ratio, 9) + "  " + (figure.floor ?? "-") + "\n"
    }
    text += linuxSection(figures)
    text += goalSection(figures)
    if !notes.isEmpty { text += "\n" }
    for note in notes {
      text += "note: \(note)\n"
    }
    return text
  }

  /// The figures that have a Linux 6.1 target, one line each: median, target, ratio.
  /// - Returns: The block, or "" when no figure has a target.
  static func linuxSection(_ figures: [BenchFigure]) -> String {
    let targeted = figures.filter { $0.linuxTarget != nil }
    guard !targeted.isEmpty else { return "" }
    let metricWidth = Swift.max(6, targeted.map(\.metric.count).max() ?? 0)
    var text =
      "\nLinux 6.1 target (median / target; below 1 is faster)\n  " + right("vcpus", 5) + "  "
      + left("metric", metricWidth) + "  " + left("unit", 4) + right("median", 12)
      + right("target", 12) + right("/target", 9) + "\n"
    for figure in targeted {
      let ratio = figure.linuxRatio.map(ratioText) ?? "-"
      text +=
        "  " + right("\(figure.vcpus)", 5) + "  " + left(figure.metric, metricWidth) + "  "
        + left(figure.unit, 4) + right("\(figure.median)", 12)
        + right("\(figure.linuxTarget ?? 0)", 12) + right(ratio, 9) + "\n"
    }
    return text
  }

  /// The figures that have a goal, one line each: median, p99, goal, p99 over goal.
  /// - Returns: The block, or "" when no figure has a goal.
  static func goalSection(_ figures: [BenchFigure]) -> String {
    let targeted = figures.filter { $0.goal != nil }
    guard !targeted.isEmpty else { return "" }
    let metricWidth = Swift.max(6, targeted.map(\.metric.count).max() ?? 0)
    var text =
      "\nGoal (p99 / goal; at most 1 is met)\n  " + right("vcpus", 5) + "  "
      + left("metric", metricWidth) + "  " + left("unit", 4) + right("median", 12)
      + right("p99", 12) + right("goal", 12) + right("p99/goal", 10) + "\n"
    for figure in targeted {
      let ratio = figure.goalRatio.map(ratioText) ?? "-"
      text +=
        "  " + right("\(figure.vcpus)", 5) + "  " + left(figure.metric, metricWidth) + "  "
        + left(figure.unit, 4) + right("\(figure.median)", 12) + right("\(figure.p99)", 12)
        + right("\(figure.goal ?? 0)", 12) + right(ratio, 10) + "\n"
    }
    return text
  }

  /// A ratio as the table prints it: two decimals, or none from 1000 up (a figure
  /// against the cache-line floor can be 10^5 times it, and must fit its column).
  /// - Parameter ratio: The ratio.
  /// - Returns: Its text.
  public static func ratioText(_ ratio: Double) -> String {
    String(format: ratio >= 1000 ? "%.0f" : "%.2f", ratio)
  }

  private static func left(_ text: String, _ width: Int) -> String {
    text + String(repeating: " ", count: Swift.max(0, width - text.count))
  }

  private static func right(_ text: String, _ width: Int) -> String {
    String(repeating: " ", count: Swift.max(0, width - text.count)) + text
  }
}
