/// One metric's samples, printed as `bench <metric> <unit> <v1> <v2> ...` lines: a new
/// line starts whenever one is full (the harness pools every line of a metric).
struct BenchLine {
  private let metric: StaticString
  private let suffix: StaticString?
  private let unit: StaticString
  private var line = LogLine()
  private var pending = 0

  /// Samples of `metric` (with `_suffix` appended when given), in `unit`.
  init(_ metric: StaticString, suffix: StaticString? = nil, unit: StaticString) {
    self.metric = metric
    self.suffix = suffix
    self.unit = unit
    startLine()
  }

  /// Adds one sample, printing the line first if it is full.
  mutating func add(_ sample: UInt64) {
    if line.count > LogLine.capacity - 24 { flush() }
    line.append(" ")
    line.append(unsigned: sample, radix: 10, minimumDigits: 1)
    pending += 1
  }

  /// Prints the samples not printed yet, if any.
  mutating func flush() {
    if pending > 0 { log(line) }
    pending = 0
    startLine()
  }

  private mutating func startLine() {
    line = "bench "
    line.append(metric)
    if let suffix {
      line.append("_")
      line.append(suffix)
    }
    line.append(" ")
    line.append(unit)
  }
}
