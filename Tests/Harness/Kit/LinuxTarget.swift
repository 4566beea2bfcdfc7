// The Linux 6.1 figures the stop work is set against, printed beside Lockstep's by
// `make bench` (a target, never a pass/fail).

/// Linux 6.1's time for the same operation, as the stop work's targets state it (the
/// figures come with the targets; how they were taken is not recorded here).
public enum LinuxTarget {
  /// One target: `metric` at `vcpus` vCPUs (every count from 2 when nil).
  public struct Entry: Equatable, Sendable {
    /// The metric, without a target state (`stop_machine` covers `stop_machine_busy`).
    public var metric: String
    /// The vCPU count the figure was taken at; nil for any count from 2 up.
    public var vcpus: Int?
    /// Linux's time, in nanoseconds.
    public var nanoseconds: UInt64
  }

  /// Every target. `stop_machine_irqoff`, `stop_one_self` and `stop_two` have none.
  public static let entries: [Entry] = [
    Entry(metric: "stop_machine", vcpus: 2, nanoseconds: 3_700_000),
    Entry(metric: "stop_machine", vcpus: 4, nanoseconds: 13_000_000),
    Entry(metric: "stop_machine", vcpus: 8, nanoseconds: 37_000_000),
    // stop_one_cpu() to another CPU: about 0.3 ms.
    Entry(metric: "stop_one_remote", vcpus: nil, nanoseconds: 300_000),
    Entry(metric: "cpu_down", vcpus: 2, nanoseconds: 51_000_000),
    Entry(metric: "cpu_up", vcpus: 2, nanoseconds: 35_000_000),
  ]

  /// Linux's time for `metric` at `vcpus` vCPUs.
  /// - Parameters:
  ///   - metric: A metric name as the kernel prints it; a `_busy` or `_idle` suffix is
  ///     ignored (the Linux figure does not say, and both should meet it).
  ///   - vcpus: The vCPU count.
  ///   - unit: The metric's unit; only `ns` figures are compared.
  /// - Returns: The target in nanoseconds, or nil when there is none.
  public static func nanoseconds(for metric: String, vcpus: Int, unit: String) -> UInt64? {
    guard unit == "ns", vcpus >= 2 else { return nil }
    let base = BenchFloor.baseMetric(metric)
    return entries.first { $0.metric == base && ($0.vcpus ?? vcpus) == vcpus }?.nanoseconds
  }
}
