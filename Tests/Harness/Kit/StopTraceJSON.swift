import Foundation
import LockstepKernel

// A stop trace as a Chrome trace-event file (the object form, which ui.perfetto.dev and
// chrome://tracing open): one track per CPU (pid 1, tid = CPU index, named by a
// `thread_name` metadata event), one complete event ("ph": "X") per state the CPU went
// through. Format: "Trace Event Format", Google, the JSON Object Format and the Complete
// and Metadata events.

/// Converts a `StopTraceBlock` to the trace-event JSON.
public enum StopTraceJSON {
  /// The process every track belongs to.
  public static let pid = 1
  /// The states, in the order each CPU enters them, with their names taken from the
  /// kernel's own `StopState` so the trace and the kernel's logs agree.
  public static let states: [StopState] = [.prepare, .disableInterrupts, .run, .exit]

  /// The state slices' names, in order: `PREPARE`, `DISABLE_IRQ`, `RUN`, `EXIT`.
  public static var stateNames: [String] { states.map { "\($0.name)" } }

  /// The name of CPU `cpu`'s track.
  public static func trackName(_ cpu: Int) -> String { "CPU \(cpu)" }

  /// The trace of `block`: times in microseconds relative to `called`, rounded to the
  /// nanosecond; `displayTimeUnit` "ns". A slice ends where the next state begins, the
  /// last (EXIT) where the CPU left. Nothing is checked here: a slice that would end
  /// before it starts is written with its negative duration, for the validator to name.
  /// - Returns: The file's contents, pretty-printed with sorted keys so runs diff cleanly.
  /// - Throws: `EncodingError` when a time is not finite (a `tscKHz` of 0).
  public static func data(_ block: StopTraceBlock) throws -> Data {
    var events = [
      TraceEvent.metadata(
        "process_name", tid: 0, name: "Lockstep stop_machine \(block.generation)")
    ]
    for line in block.cpus {
      events.append(.metadata("thread_name", tid: line.cpu, name: trackName(line.cpu)))
      let entries = [line.prepare, line.disableIRQ, line.run, line.exit, line.left]
      for (index, state) in states.enumerated() {
        let start = nanoseconds(from: line.called, to: entries[index], khz: block.tscKHz)
        let end = nanoseconds(from: line.called, to: entries[index + 1], khz: block.tscKHz)
        // Whole nanoseconds subtracted before the division, so that a duration reads
        // 48.005, not 48.0049999999992.
        events.append(
          TraceEvent(
            name: "\(state.name)", cat: "stop_machine", ph: "X", pid: pid, tid: line.cpu,
            ts: start / 1000, dur: (end - start) / 1000,
            args: ["active": .integer(line.isActive ? 1 : 0), "stop": .integer(block.generation)]
          ))
      }
    }
    let document = TraceDocument(
      traceEvents: events, displayTimeUnit: "ns",
      otherData: [
        "stop": .integer(block.generation), "cpus": .integer(UInt64(block.cpuCount)),
        "tsc_khz": .integer(block.tscKHz),
      ])
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return try encoder.encode(document)
  }

  /// A log's first stop trace, converted, with what the validator checks it against.
  /// - Returns: The block, the online CPUs of the log's `smp: online` line, and the
  ///   trace file's contents.
  /// - Throws: `StopTraceError` when the block is missing or malformed, the online line
  ///   is missing, or the times cannot be written.
  public static func convert(
    _ log: SerialLog
  ) throws(StopTraceError) -> (block: StopTraceBlock, online: [Int], data: Data) {
    let block = try StopTraceBlock.parse(log)
    guard let online = log.online else {
      throw StopTraceError("no 'smp: online' line to check the tracks against")
    }
    do {
      return (block, online.cpus, try data(block))
    } catch {
      throw StopTraceError("cannot convert: \(error)")
    }
  }

  /// Whole nanoseconds from `origin` to `tick` (negative if `tick` is earlier), as a
  /// `Double` (exact below 2^53 ns, 104 days). `khz` is ticks per millisecond, so
  /// ticks * 10^6 / khz is nanoseconds.
  static func nanoseconds(from origin: UInt64, to tick: UInt64, khz: UInt64) -> Double {
    let ticks = Double(Int64(bitPattern: tick &- origin))
    return (ticks * 1_000_000 / Double(khz)).rounded()
  }
}

/// An `args` or `otherData` value.
enum TraceValue: Encodable {
  case integer(UInt64)
  case text(String)

  func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    switch self {
    case .integer(let value): try container.encode(value)
    case .text(let value): try container.encode(value)
    }
  }
}

/// One trace event; `ts` and `dur` only for complete events.
struct TraceEvent: Encodable {
  var name: String
  var cat: String?
  var ph: String
  var pid: Int
  var tid: Int
  var ts: Double?
  var dur: Double?
  var args: [String: TraceValue]

  /// A metadata event (`process_name`, `thread_name`) giving `name`.
  static func metadata(_ kind: String, tid: Int, name: String) -> TraceEvent {
    TraceEvent(
      name: kind, ph: "M", pid: StopTraceJSON.pid, tid: tid, args: ["name": .text(name)])
  }
}

/// The object form of a trace file.
struct TraceDocument: Encodable {
  var traceEvents: [TraceEvent]
  var displayTimeUnit: String
  var otherData: [String: TraceValue]
}
