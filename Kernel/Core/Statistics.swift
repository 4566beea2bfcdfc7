// Integer summaries of benchmark samples (TSC cycle counts): median, p99, extremes.
// No floating point: the kernel runs with SSE and x87 off.

/// Nearest-rank statistics over `UInt64` samples.
public enum Statistics {
  /// A summary of a sample set; all zero for no samples.
  public struct Summary: Equatable, Sendable {
    /// Number of samples.
    public var count: Int
    /// Smallest sample.
    public var min: UInt64
    /// 50th percentile, nearest rank.
    public var median: UInt64
    /// 99th percentile, nearest rank.
    public var p99: UInt64
    /// Largest sample.
    public var max: UInt64

    /// Creates a summary.
    ///
    /// - Parameters:
    ///   - count: number of samples.
    ///   - min: smallest sample.
    ///   - median: 50th percentile.
    ///   - p99: 99th percentile.
    ///   - max: largest sample.
    public init(count: Int, min: UInt64, median: UInt64, p99: UInt64, max: UInt64) {
      self.count = count
      self.min = min
      self.median = median
      self.p99 = p99
      self.max = max
    }
  }

  /// The `percent`-th percentile by nearest rank: the ⌈percent/100 × n⌉-th smallest sample.
  ///
  /// Percentile 0 is taken as rank 1 (the minimum).
  /// - Parameters:
  ///   - sorted: samples in ascending order.
  ///   - percent: the percentile, `0...100`.
  /// - Returns: the sample at that rank, or 0 if there are no samples.
  public static func quantile(_ sorted: [UInt64], _ percent: Int) -> UInt64 {
    precondition(percent >= 0 && percent <= 100, "percentile out of range")
    guard !sorted.isEmpty else { return 0 }
    // ceil(percent * n / 100) in integers.
    let rank = (percent * sorted.count + 99) / 100
    return sorted[Swift.max(rank, 1) - 1]
  }

  /// Summarises samples in any order.
  ///
  /// Context: allocates (sorts a copy); not for IRQ or NMI context.
  /// - Parameter samples: the samples.
  /// - Returns: count, min, median, p99 and max; all zero if `samples` is empty.
  public static func summary(_ samples: [UInt64]) -> Summary {
    guard !samples.isEmpty else {
      return Summary(count: 0, min: 0, median: 0, p99: 0, max: 0)
    }
    let sorted = samples.sorted()
    return Summary(
      count: sorted.count, min: sorted[0], median: quantile(sorted, 50),
      p99: quantile(sorted, 99), max: sorted[sorted.count - 1])
  }
}
