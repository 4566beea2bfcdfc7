import Foundation

// Checks a stop-trace file as a reader would see it: re-read with JSONSerialization, not
// trusted because the converter wrote it. Each failure names the CPU and the problem.

/// Validates the trace-event JSON of one stop (see `StopTraceJSON`).
public enum StopTraceValidator {
  /// Allowed slack when one slice's end meets the next one's start: times are whole
  /// nanoseconds written as microseconds, so their sums carry binary rounding only.
  static let slackMicroseconds = 1e-6

  /// One complete event as read back.
  struct Slice {
    var name: String
    var ts: Double
    var dur: Double
  }

  /// Every problem of the trace in `data`.
  /// - Parameters:
  ///   - data: The file's contents.
  ///   - cpuCount: How many CPUs the begin line says took part: exactly that many tracks.
  ///   - online: The online CPUs (the log's `smp: online cpus=` line): each needs a track,
  ///     and no other CPU may have one.
  /// - Returns: The failures, in CPU order; none means valid.
  public static func failures(in data: Data, cpuCount: Int, online: [Int]) -> [String] {
    let root: Any
    do {
      root = try JSONSerialization.jsonObject(with: data)
    } catch {
      return ["not well-formed JSON: \(error.localizedDescription)"]
    }
    guard let object = root as? [String: Any], let events = object["traceEvents"] as? [Any] else {
      return ["not a trace object: no 'traceEvents' array"]
    }
    var failures: [String] = []
    var names: [Int: [String]] = [:]
    var slices: [Int: [Slice]] = [:]
    for (index, item) in events.enumerated() {
      guard let event = item as? [String: Any] else {
        failures.append("event \(index) is not an object")
        continue
      }
      failures += read(event, index: index, names: &names, slices: &slices)
    }
    failures += trackFailures(names: names, slices: slices, cpuCount: cpuCount, online: online)
    for cpu in Set(names.keys).union(slices.keys).sorted() {
      failures += sliceFailures(slices[cpu] ?? [], cpu: cpu)
    }
    return failures
  }

  /// Files a `thread_name` metadata event under `names`, a complete event under `slices`;
  /// other events (process metadata) are passed over.
  /// - Returns: A failure for a complete event that lacks a field.
  private static func read(
    _ event: [String: Any], index: Int, names: inout [Int: [String]],
    slices: inout [Int: [Slice]]
  ) -> [String] {
    let phase = event["ph"] as? String
    let name = event["name"] as? String
    if phase == "M" && name == "thread_name" {
      guard let tid = event["tid"] as? Int,
        let label = (event["args"] as? [String: Any])?["name"] as? String
      else { return ["thread_name event \(index) lacks its tid or args.name"] }
      names[tid, default: []].append(label)
      return []
    }
    guard phase == "X" else { return [] }
    guard let name, let tid = event["tid"] as? Int, let ts = number(event["ts"]),
      let dur = number(event["dur"])
    else { return ["complete event \(index) lacks its name, tid, ts or dur"] }
    guard event["pid"] as? Int == StopTraceJSON.pid else {
      return ["CPU \(tid): \(name) is not on pid \(StopTraceJSON.pid)"]
    }
    slices[tid, default: []].append(Slice(name: name, ts: ts, dur: dur))
    return []
  }

  private static func number(_ value: Any?) -> Double? {
    (value as? NSNumber).map(\.doubleValue)
  }

  /// One track per CPU, named `CPU n`, as many as the begin line says, every online CPU
  /// among them and no other.
  static func trackFailures(
    names: [Int: [String]], slices: [Int: [Slice]], cpuCount: Int, online: [Int]
  ) -> [String] {
    var failures: [String] = []
    if names.count != cpuCount {
      failures.append("\(names.count) CPU tracks, the begin line says cpus=\(cpuCount)")
    }
    for cpu in online where names[cpu] == nil {
      failures.append("CPU \(cpu): online but has no track")
    }
    for (cpu, labels) in names.sorted(by: { $0.key < $1.key }) {
      if !online.contains(cpu) { failures.append("CPU \(cpu): has a track but is not online") }
      if labels.count > 1 { failures.append("CPU \(cpu): \(labels.count) tracks") }
      for label in Set(labels) where label != StopTraceJSON.trackName(cpu) {
        failures.append("CPU \(cpu): track named '\(label)'")
      }
    }
    for cpu in slices.keys.sorted() where names[cpu] == nil {
      failures.append("CPU \(cpu): slices on an unnamed track")
    }
    return failures
  }

  /// The four states once each, in order, none overlapping the next, none negative.
  static func sliceFailures(_ slices: [Slice], cpu: Int) -> [String] {
    guard !slices.isEmpty else { return ["CPU \(cpu): no state slices"] }
    var failures: [String] = []
    let expected = StopTraceJSON.stateNames
    for slice in slices where slice.dur < 0 {
      failures.append("CPU \(cpu): \(slice.name) has negative duration \(slice.dur) us")
    }
    let counts = expected.map { state in slices.filter { $0.name == state }.count }
    for (state, count) in zip(expected, counts) where count != 1 {
      failures.append("CPU \(cpu): \(state) appears \(count) times")
    }
    for name in Set(slices.map(\.name)).subtracting(expected).sorted() {
      failures.append("CPU \(cpu): unknown state '\(name)'")
    }
    // Start order; ties keep file order (a state may last 0 ns).
    let ordered = slices.enumerated()
      .sorted { ($0.element.ts, $0.offset) < ($1.element.ts, $1.offset) }.map(\.element)
    // The order is only worth a message when each state is there once.
    let eachOnce = slices.count == expected.count && counts.allSatisfy { $0 == 1 }
    if eachOnce && ordered.map(\.name) != expected {
      failures.append(
        "CPU \(cpu): states in order \(ordered.map(\.name).joined(separator: ", ")), "
          + "expected \(expected.joined(separator: ", "))")
    }
    for (earlier, later) in zip(ordered, ordered.dropFirst())
    where later.ts < earlier.ts + earlier.dur - slackMicroseconds {
      failures.append(
        "CPU \(cpu): \(earlier.name) [\(earlier.ts), \(earlier.ts + earlier.dur)) us "
          + "overlaps \(later.name) from \(later.ts) us")
    }
    return failures
  }

  /// The same conversion and validation `make trace` runs, on a log in memory.
  /// - Returns: The failures; none means a valid trace.
  public static func failures(inLog log: SerialLog) -> [String] {
    do {
      let converted = try StopTraceJSON.convert(log)
      return failures(
        in: converted.data, cpuCount: converted.block.cpuCount, online: converted.online)
    } catch {
      return [error.message]
    }
  }
}
