import LockstepKernel

// Benchmark samples from `bench` lines, pooled per (metric, vCPU count) across boots.

/// One benchmark line of the serial log.
public enum BenchLine: Equatable, Sendable {
  /// `bench <metric> <unit> <v1> <v2> ...`: samples of one metric.
  case samples(metric: String, unit: String, values: [UInt64])
  /// `bench-note <free text>`.
  case note(String)

  /// Parses one log line.
  /// - Returns: The line, or nil for any other line or a malformed `bench` line.
  public static func parse(_ line: Substring) -> BenchLine? {
    if line.hasPrefix("bench-note ") {
      return .note(String(line.dropFirst("bench-note ".count)))
    }
    let words = line.split(separator: " ")
    guard words.count >= 4, words[0] == "bench" else { return nil }
    let values = words[3...].compactMap { UInt64($0) }
    guard values.count == words.count - 3 else { return nil }
    return .samples(metric: String(words[1]), unit: String(words[2]), values: values)
  }
}

/// Samples of every (metric, vCPU count) seen so far, and the notes the kernel printed.
public struct BenchPool: Sendable {
  /// A metric measured at one vCPU count.
  public struct Key: Hashable, Sendable {
    /// The vCPU count of the boots.
    public var vcpus: Int
    /// The metric's name.
    public var metric: String

    /// Creates a key.
    public init(vcpus: Int, metric: String) {
      self.vcpus = vcpus
      self.metric = metric
    }
  }

  /// Keys in the order first seen.
  public private(set) var keys: [Key] = []
  /// Pooled samples per key.
  public private(set) var samples: [Key: [UInt64]] = [:]
  /// The unit of each key, as first printed.
  public private(set) var units: [Key: String] = [:]
  /// Distinct `bench-note` texts, in the order first seen.
  public private(set) var notes: [String] = []

  /// Creates an empty pool.
  public init() {}

  /// Adds every `bench` and `bench-note` line of one boot's log.
  /// - Parameters:
  ///   - log: The boot's serial log.
  ///   - vcpus: The boot's vCPU count.
  public mutating func add(_ log: SerialLog, vcpus: Int) {
    for line in log.lines.compactMap(BenchLine.parse) {
      switch line {
      case .note(let text):
        if !notes.contains(text) { notes.append(text) }
      case .samples(let metric, let unit, let values):
        let key = Key(vcpus: vcpus, metric: metric)
        if samples[key] == nil {
          keys.append(key)
          units[key] = unit
        }
        samples[key, default: []] += values
      }
    }
  }

  /// One figure per key, ordered by vCPU count and then by first appearance.
  public var figures: [BenchFigure] {
    // Sort on (vCPUs, first appearance): explicit, since sort stability is not promised.
    let order = keys.enumerated()
      .sorted { ($0.element.vcpus, $0.offset) < ($1.element.vcpus, $1.offset) }
      .map(\.element)
    return order.compactMap { key in
      let summary = Statistics.summary(samples[key] ?? [])
      guard summary.count > 0 else { return nil }
      let floor = BenchFloor.metric(for: key.metric)
      let ratio = floorRatio(of: key, to: floor, median: summary.median)
      let unit = units[key] ?? ""
      return BenchFigure(
        vcpus: key.vcpus, metric: key.metric, unit: unit, summary: summary,
        floorRatio: ratio, floor: ratio == nil ? nil : floor,
        linuxTarget: LinuxTarget.nanoseconds(for: key.metric, vcpus: key.vcpus, unit: unit),
        goal: LinuxTarget.goal(for: key.metric, vcpus: key.vcpus, unit: unit))
    }
  }

  /// median / median of `floor` at the same vCPU count; nil without that floor, below
  /// 2 vCPUs, or when the units differ (the ratio would mean nothing).
  private func floorRatio(of key: Key, to floor: String, median: UInt64) -> Double? {
    let floorKey = Key(vcpus: key.vcpus, metric: floor)
    guard key.vcpus >= 2, units[floorKey] == units[key],
      case let summary = Statistics.summary(samples[floorKey] ?? []), summary.median > 0
    else { return nil }
    return Double(median) / Double(summary.median)
  }
}

/// Which floor each metric is divided by: the one rule, in one place. A floor is the
/// cost no protocol can avoid, measured in the same boots.
///
/// - IPI-based figures (names starting with one of `ipiBasedPrefixes` and ending in
///   `_busy` or `_idle`): the bare IPI round trip with the target in the same state,
///   `ipi_rtt_busy` or `ipi_rtt_idle`.
/// - The stopper round trips `stop_one_remote` and `stop_two` printed without a state:
///   `ipi_rtt_idle` (see `idleUnlessStated`).
/// - `smp_send_stop`'s `sendstop_idle` and `sendstop_busy`: as the calls to every other
///   CPU, `ipi_rtt_idle` and `ipi_rtt_busy`.
/// - `bringup_total`: `bringup_floor`.
/// - Everything else, the IPI floors included: `cacheline_rtt`.
public enum BenchFloor {
  /// A cache line's round trip between two CPUs.
  public static let cacheLine = "cacheline_rtt"
  /// The bring-up that no protocol can beat, for `bringup_total`.
  public static let bringUp = "bringup_floor"
  /// The IPI floors are this followed by the target's state (`busy`, `idle`).
  public static let ipiRoundTripPrefix = "ipi_rtt_"
  /// Metric name prefixes of IPI-based figures: the cross-calls (`call_single_busy`,
  /// `call_others_idle`, ...), and the stopper requests to one other CPU. A remote
  /// `stop_one_cpu` wakes the target's stopper thread (an IPI there) and its completion
  /// wakes the sleeping caller (an IPI back): the IPI round trip's shape, plus the
  /// switches into and out of the stopper, which is what the ratio shows. `stop_two`
  /// is the same with the two-CPU state machine in the middle. `async_latency_*` is
  /// one-way and stays on the cache line. `sendstop_idle` and `sendstop_busy` (a
  /// rehearsed `smp_send_stop`) have `call_others`' shape: one IPI to every other CPU,
  /// each answering through a cache line the caller spins on.
  ///
  /// The rest of the stop figures stay on the cache line, for want of an honest
  /// floor of their shape: `stop_one_self` sends no IPI (the caller's own stopper
  /// preempts it); `stop_machine` wakes every other CPU and moves them all through four
  /// states, each a counter every CPU acknowledges through one cache line, so a single
  /// IPI round trip would understate it and nothing measured here is N of them;
  /// `stop_machine_irqoff` (interrupts off, from DISABLE_IRQ to leaving) is nothing
  /// but those acknowledgements; `cpu_down` and `cpu_up` bring one CPU down or up, and
  /// `bringup_floor` is all of them at once. `sendstop_wedged` is by design the first
  /// attempt's timeout and then an NMI's round (`nmi_latency`, itself a floor-like
  /// figure on the cache line): no floor of that shape either. Their yardstick is the
  /// Linux target and the goal (`LinuxTarget`).
  public static let ipiBasedPrefixes = ["call_", "stop_one_remote", "stop_two", "sendstop_"]
  /// IPI-based figures the kernel may print without a target state; they are then
  /// measured with the target idle in `hlt`, as a bench boot leaves every CPU but the
  /// caller unless a figure says `_busy`, so their floor is `ipi_rtt_idle`. (A plain
  /// `call_*` figure has no such promise and keeps the cache line.)
  public static let idleUnlessStated = ["stop_one_remote", "stop_two"]
  /// The target states an IPI-based metric name ends with.
  public static let targetStates = ["busy", "idle"]

  /// The floor metric `metric` is compared with.
  /// - Parameter metric: A metric name as the kernel prints it.
  /// - Returns: The floor's metric name.
  public static func metric(for metric: String) -> String {
    if metric == "bringup_total" { return bringUp }
    guard ipiBasedPrefixes.contains(where: { metric.hasPrefix($0) }) else { return cacheLine }
    if let state = targetStates.first(where: { metric.hasSuffix("_" + $0) }) {
      return ipiRoundTripPrefix + state
    }
    return idleUnlessStated.contains(metric) ? ipiRoundTripPrefix + "idle" : cacheLine
  }

  /// `metric` without a trailing target state: `stop_machine_busy` is `stop_machine`.
  public static func baseMetric(_ metric: String) -> String {
    for state in targetStates where metric.hasSuffix("_" + state) {
      return String(metric.dropLast(state.count + 1))
    }
    return metric
  }
}
