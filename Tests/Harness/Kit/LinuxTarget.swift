// The Linux 6.1 figures the stop work is set against, printed beside Lockstep's by
// `make bench` (a target, never a pass/fail).

/// Linux 6.1's time for the same operation, as the stop work's targets state it (the
/// figures come with the targets; how they were taken is not recorded here), and the
/// issue's own goal for Lockstep where it names one in absolute terms rather than as a
/// fraction of Linux's time.
public enum LinuxTarget {
  /// One target: `metric` at `vcpus` vCPUs (every count from 2 when nil).
  public struct Entry: Equatable, Sendable {
    /// The metric, without a target state (`stop_machine` covers `stop_machine_busy`).
    public var metric: String
    /// The vCPU count the figure was taken at; nil for any count from 2 up.
    public var vcpus: Int?
    /// Linux's time, in nanoseconds.
    public var nanoseconds: UInt64
    /// The goal for Lockstep's time, in nanoseconds: every sample within it, so
    /// it is held against the p99. Nil where the goal is only relative to Linux's.
    public var goal: UInt64? = nil
  }

  /// Every target. `stop_machine_irqoff`, `stop_one_self`, `stop_two` and `nmi_latency`
  /// have none.
  public static let entries: [Entry] = [
    Entry(metric: "stop_machine", vcpus: 2, nanoseconds: 3_700_000),
    Entry(metric: "stop_machine", vcpus: 4, nanoseconds: 13_000_000),
    Entry(metric: "stop_machine", vcpus: 8, nanoseconds: 37_000_000),
    // stop_one_cpu() to another CPU: about 0.3 ms.
    Entry(metric: "stop_one_remote", vcpus: nil, nanoseconds: 300_000),
    Entry(metric: "cpu_down", vcpus: 2, nanoseconds: 51_000_000),
    Entry(metric: "cpu_up", vcpus: 2, nanoseconds: 35_000_000),
    // smp_send_stop with every other CPU responsive (idle or busy), 8 vCPUs: Linux
    // 6.1 in the same QEMU took 0.6 to 2.9 ms (the low end here); the goal is every
    // CPU stopped within 70 us.
    Entry(metric: "sendstop", vcpus: 8, nanoseconds: 600_000, goal: 70_000),
    // One CPU with interrupts off: Linux waits a full second for the stop vector before
    // it sends the NMI; the goal is everything stopped within 20 ms.
    Entry(metric: "sendstop_wedged", vcpus: nil, nanoseconds: 1_000_000_000, goal: 20_000_000),
  ]

  /// Linux's time for `metric` at `vcpus` vCPUs.
  /// - Parameters:
  ///   - metric: A metric name as the kernel prints it; a `_busy` or `_idle` suffix is
  ///     ignored (the Linux figure does not say, and both should meet it).
  ///   - vcpus: The vCPU count.
  ///   - unit: The metric's unit; only `ns` figures are compared.
  /// - Returns: The target in nanoseconds, or nil when there is none.
  public static func nanoseconds(for metric: String, vcpus: Int, unit: String) -> UInt64? {
    entry(for: metric, vcpus: vcpus, unit: unit)?.nanoseconds
  }

  /// The goal for `metric` at `vcpus` vCPUs, matched as `nanoseconds(for:)`.
  /// - Returns: The goal in nanoseconds, or nil when there is none.
  public static func goal(for metric: String, vcpus: Int, unit: String) -> UInt64? {
    entry(for: metric, vcpus: vcpus, unit: unit)?.goal
  }

  private static func entry(for metric: String, vcpus: Int, unit: String) -> Entry? {
    guard unit == "ns", vcpus >= 2 else { return nil }
    let base = BenchFloor.baseMetric(metric)
    return entries.first { $0.metric == base && ($0.vcpus ?? vcpus) == vcpus }
  }
}
