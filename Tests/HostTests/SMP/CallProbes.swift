import Glibc
import LockstepKernel
import Synchronization
import Testing

// What the tests' call functions report into. A `CallFunction` is a C function
// pointer, so it cannot capture: its context arrives through the info pointer as an
// unretained reference to one of these objects, which the test keeps alive.

/// One run of a traced call function.
struct CallRun: Equatable, CustomStringConvertible {
  /// The ticket's id.
  let id: Int
  /// The CPU it ran on.
  let cpu: Int
  /// Whether interrupts were on while it ran (they never should be).
  let interruptsOn: Bool

  /// `#id@cpu`, with `+if` if interrupts were on.
  var description: String { "#\(id)@\(cpu)\(interruptsOn ? "+if" : "")" }
}

/// Every run of traced calls, in the order they happened.
final class CallTrace: @unchecked Sendable {
  private let monitor = Monitor()
  /// Guarded by `monitor`.
  private var entries: [CallRun] = []

  /// An empty trace.
  init() {}

  /// Appends a run. Any context (the host mutex stands in for a lock-free log).
  func append(_ run: CallRun) { monitor.withLock { entries.append(run) } }

  /// The runs so far.
  var runs: [CallRun] { monitor.withLock { entries } }

  /// The ids of the runs so far, in order.
  var ids: [Int] { runs.map(\.id) }

  /// How many runs happened on each CPU of `0..<cpuCount`.
  func counts(cpuCount: Int) -> [Int] {
    var counts = Array(repeating: 0, count: cpuCount)
    for run in runs { counts[run.cpu] += 1 }
    return counts
  }

  /// Waits (polling, not from a fake CPU) until there are `count` runs.
  func waitForRuns(_ count: Int, timeout seconds: Double = 5) -> Bool {
    HostClock.poll(timeout: seconds) { runs.count >= count }
  }

  /// Whether any run had interrupts on.
  var anyRanWithInterruptsOn: Bool { runs.contains { $0.interruptsOn } }
}

/// The info of one traced call: the trace to report to and an id.
final class CallTicket: @unchecked Sendable {
  /// Where runs go.
  let trace: CallTrace
  /// This call's id.
  let id: Int
  /// Written by the call function with a plain store; read by the caller after the
  /// call completed. ThreadSanitizer flags it unless completion orders the two.
  var payload = 0

  /// A ticket `id` reporting to `trace`.
  init(_ trace: CallTrace, id: Int) {
    self.trace = trace
    self.id = id
  }

  /// The info pointer for this ticket (unretained: the test keeps the ticket alive).
  var info: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

  /// The ticket behind an info pointer.
  static func from(_ info: UnsafeMutableRawPointer?) -> CallTicket {
    Unmanaged<CallTicket>.fromOpaque(info!).takeUnretainedValue()
  }

  /// Appends a run of this ticket on the running fake CPU.
  func record() {
    trace.append(
      CallRun(
        id: id, cpu: FakePlatform.currentCPU.rawValue, interruptsOn: FakePlatform.interruptsEnabled))
  }
}

/// The call functions the tests send.
enum Calls {
  /// Records a run of the ticket in `info`.
  static var trace: CallFunction { { info in CallTicket.from(info).record() } }

  /// Spins 20 ms, then writes the ticket's payload (plain store) and records a run: a
  /// caller that returns before this finished sees the payload unwritten.
  static var slowlyWritePayload: CallFunction {
    { info in
      let ticket = CallTicket.from(info)
      FakePlatform.spin(for: 0.02)
      ticket.payload = 42
      ticket.record()
    }
  }

  /// Does nothing.
  static var nothing: CallFunction { { _ in } }
}

/// Call records owned by a test, for `callSingleAsync`. The memory is freed only if no
/// record is still in flight; otherwise it is leaked on purpose, since a CPU may still
/// write to it.
final class RecordPool: @unchecked Sendable {
  /// How many records.
  let count: Int
  private let records: UnsafeMutablePointer<CallRecord>
  /// The records' info objects, kept alive with them.
  private let tickets: [CallTicket]

  /// `count` records running `function` with no info.
  convenience init(count: Int, function: CallFunction) {
    self.init(count: count, function: function, keeping: [])
  }

  /// `tickets.count` records running `function`, record `i` with ticket `i` as its info.
  convenience init(tickets: [CallTicket], function: CallFunction) {
    self.init(count: tickets.count, function: function, keeping: tickets)
    for (index, ticket) in tickets.enumerated() { self[index].pointee.info = ticket.info }
  }

  private init(count: Int, function: CallFunction, keeping tickets: [CallTicket]) {
    self.count = count
    self.tickets = tickets
    records = .allocate(capacity: count)
    for index in 0..<count { (records + index).initialize(to: CallRecord(function: function)) }
  }

  deinit {
    guard (0..<count).allSatisfy({ !self[$0].pointee.isLocked }) else { return }
    records.deinitialize(count: count)
    records.deallocate()
  }

  /// Record `index`.
  subscript(index: Int) -> UnsafeMutablePointer<CallRecord> { records + index }

  /// Whether no record is in flight.
  var allUnlocked: Bool { (0..<count).allSatisfy { !self[$0].pointee.isLocked } }
}

/// A flag one thread raises and fake CPUs wait on, for lining up concurrent steps.
final class Gate: @unchecked Sendable {
  private let flag = Atomic<Int>(0)

  /// A closed gate.
  init() {}

  /// Counts one arrival (release: what the arriving thread did before is visible to
  /// whoever sees the count; pairs with the acquire in `count`).
  func arrive() { flag.add(1, ordering: .releasing) }

  /// Arrivals so far.
  var count: Int { flag.load(ordering: .acquiring) }

  /// On a fake CPU: spins (interrupt points included) until `count` arrivals.
  @discardableResult
  func spinUntil(_ arrivals: Int, timeout seconds: Double = 5) -> Bool {
    FakePlatform.spin(timeout: seconds) { count >= arrivals }
  }

  /// On the test thread: polls until `count` arrivals.
  @discardableResult
  func pollUntil(_ arrivals: Int, timeout seconds: Double = 5) -> Bool {
    HostClock.poll(timeout: seconds) { count >= arrivals }
  }
}

/// The error a throwing call produced, or nil.
/// (Untyped `throws` here: closures do not infer a typed thrown error yet.)
func caughtError(_ body: () throws -> Void) -> CrossCallError? {
  do {
    try body()
    return nil
  } catch let error as CrossCallError {
    return error
  } catch {
    preconditionFailure("cross-calls throw only CrossCallError, got \(error)")
  }
}

/// How a cross-call made on a fake CPU ended.
enum CallOutcome: Equatable, CustomStringConvertible {
  /// It returned normally.
  case returned
  /// It threw.
  case threw(CrossCallError)
  /// It did not finish in time (an issue has been recorded).
  case timedOut

  /// For failure messages.
  var description: String {
    switch self {
    case .returned: "returned"
    case .threw(let error): "threw \(error)"
    case .timedOut: "timed out"
    }
  }
}

extension FakeMachine {
  /// Runs a throwing cross-call on CPU `cpu` and reports how it ended.
  func attempt(
    on cpu: Int, timeout seconds: Double = 5, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: @escaping () throws -> Void
  ) -> CallOutcome {
    let error = run(on: cpu, timeout: seconds, sourceLocation: sourceLocation) { caughtError(body) }
    guard let error else { return .timedOut }
    return error.map { .threw($0) } ?? .returned
  }

  /// `statistics.interruptsRequested(for:)` of CPU `cpu`, now.
  func interruptsRequested(for cpu: Int) -> Int {
    calls.statistics.interruptsRequested(for: CPUIndex(cpu)).pointee.load(ordering: .relaxed)
  }

  /// `statistics.interruptsHandled(on:)` of CPU `cpu`, now.
  func interruptsHandled(on cpu: Int) -> Int {
    calls.statistics.interruptsHandled(on: CPUIndex(cpu)).pointee.load(ordering: .relaxed)
  }
}
