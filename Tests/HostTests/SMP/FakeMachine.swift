import Glibc
import LockstepKernel
import Synchronization
import Testing

/// Every SMP protocol suite nests in here, so `.serialized` covers them all: they
/// measure time and spin host threads, and this machine may have only two cores.
@Suite("SMP", .serialized)
enum SMPTests {}

/// A host stand-in for an SMP machine: `cpuCount` fake CPUs on host threads sharing
/// one `CrossCalls<FakePlatform>`. `FakePlatform` finds the machine through the
/// running fake CPU (thread-local), so kernel code runs unmodified on any of them.
///
/// Create one per test with `FakeMachine.with(...)`, which also shuts it down and turns
/// anything the kernel reported through `panic` into test failures.
final class FakeMachine: @unchecked Sendable {
  /// The cross-call state under test.
  let calls: CrossCalls<FakePlatform>
  /// The CPUs, by index. Set in `init`, before any thread starts.
  private(set) var cpus: [FakeCPU] = []

  private let monitor = Monitor()
  /// Guarded by `monitor`.
  private var lines: [String] = []
  /// Guarded by `monitor`.
  private var panics: [String] = []
  /// Guarded by `monitor`.
  private var broadcasts: [CPUSet] = []
  /// Print log lines as they come (set SMP_FAKE_LOG=1).
  private let echo = getenv("SMP_FAKE_LOG") != nil

  /// Machines whose threads would not stop; kept alive so those threads never touch
  /// freed memory. Guarded by `strandedMonitor`.
  nonisolated(unsafe) private static var stranded: [FakeMachine] = []
  private static let strandedMonitor = Monitor()

  /// A machine with `cpuCount` CPUs, all online with interrupts on, threads running.
  init(cpuCount: Int, watchdogTimeout: UInt64 = 2_000_000_000) {
    calls = CrossCalls(cpuCount: cpuCount, watchdogTimeout: watchdogTimeout)
    cpus = (0..<cpuCount).map { FakeCPU(index: $0, machine: self) }
    for cpu in cpus { cpu.start() }
  }

  /// The machine of the fake CPU running the caller (the per-thread "current machine").
  static var current: FakeMachine { FakeCPU.current.machine }

  /// Runs `body` with a fresh machine, then stops it and records as test issues any
  /// panic and any CPU that would not stop.
  static func with(
    cpus cpuCount: Int = 4, watchdogTimeout: UInt64 = 2_000_000_000,
    sourceLocation: SourceLocation = #_sourceLocation, _ body: (FakeMachine) throws -> Void
  ) rethrows {
    let machine = FakeMachine(cpuCount: cpuCount, watchdogTimeout: watchdogTimeout)
    defer { machine.shutDown(sourceLocation: sourceLocation) }
    try body(machine)
  }

  private func shutDown(sourceLocation: SourceLocation) {
    let deadline = HostClock.deadline(after: 3)
    let stuck = cpus.filter { !$0.stop(before: deadline) }.map(\.index.rawValue)
    if !stuck.isEmpty {
      Issue.record("fake CPUs \(stuck) did not stop; \(stateReport)", sourceLocation: sourceLocation)
      Self.strandedMonitor.withLock { Self.stranded.append(self) }
    }
    for line in monitor.withLock({ panics }) {
      Issue.record("kernel panic: \(line)", sourceLocation: sourceLocation)
    }
  }

  // MARK: Running code on CPUs

  /// Starts `body` on CPU `cpu` and returns at once; finish it with `finish(_:)`.
  @discardableResult
  func start(on cpu: Int, _ body: @escaping () -> Void) -> FakeJob {
    let job = FakeJob(cpu: cpu, body)
    cpus[cpu].submit(job)
    return job
  }

  /// Waits up to `seconds` for `job`; on timeout records an issue with the machine's
  /// state and returns false.
  @discardableResult
  func finish(
    _ job: FakeJob, timeout seconds: Double = 5, sourceLocation: SourceLocation = #_sourceLocation
  ) -> Bool {
    if job.wait(timeout: seconds) { return true }
    Issue.record(
      "job on CPU \(job.cpu) did not finish within \(seconds) s; \(stateReport)",
      sourceLocation: sourceLocation)
    return false
  }

  /// Runs `body` on CPU `cpu` and returns its result, or nil (with a recorded issue) if
  /// it did not finish within `seconds`.
  func run<T>(
    on cpu: Int, timeout seconds: Double = 5, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: @escaping () -> T
  ) -> T? {
    let box = ResultBox<T>()
    let job = start(on: cpu) { box.value = body() }
    guard finish(job, timeout: seconds, sourceLocation: sourceLocation) else { return nil }
    return box.value
  }

  // MARK: Machine controls

  /// Makes the next `count` call IPIs to `cpu` vanish.
  func dropNextIPIs(_ count: Int, to cpu: Int) { cpus[cpu].dropNextIPIs(count) }

  /// Puts `cpu` in or out of the online mask (its thread keeps running).
  func setOnline(_ cpu: Int, _ isOnline: Bool) {
    cpus[cpu].online.store(isOnline, ordering: .sequentiallyConsistent)
  }

  /// Raises a call interrupt on `cpu` by hand, as a stray or late IPI would.
  func raiseInterrupt(on cpu: Int) { cpus[cpu].deliverIPI() }

  /// The online mask.
  var onlineCPUs: CPUSet {
    CPUSet(cpus.filter { $0.online.load(ordering: .sequentiallyConsistent) }.map(\.index))
  }

  // MARK: Platform back end

  /// `FakePlatform.sendCallIPI(to:)`.
  func sendIPI(to cpu: CPUIndex) {
    cpus[cpu.rawValue].unicastIPIs.add(1, ordering: .relaxed)
    cpus[cpu.rawValue].deliverIPI()
  }

  /// `FakePlatform.sendCallIPI(toAll:)`: one event, then an IPI per CPU.
  func sendIPI(toAll set: CPUSet) {
    monitor.withLock { broadcasts.append(set) }
    for cpu in set { cpus[cpu.rawValue].deliverIPI() }
  }

  /// The sets passed to `sendCallIPI(toAll:)`, in order.
  var broadcastSets: [CPUSet] { monitor.withLock { broadcasts } }

  /// `FakePlatform.log(_:)`.
  func append(log line: String) {
    monitor.withLock { lines.append(line) }
    if echo { print("[fake] \(line)") }
  }

  /// `sendCallIPI(to:)` calls aimed at each CPU of `cpus` (all CPUs by default), summed.
  func unicastIPIs(to cpus: [Int]? = nil) -> Int {
    (cpus ?? Array(self.cpus.indices)).reduce(0) { $0 + self.cpus[$1].unicastIPIs.load(ordering: .relaxed) }
  }

  /// `FakePlatform.panic(_:)`, or a broken platform contract: remembered for
  /// `with(...)` to report.
  func append(panic line: String) {
    append(log: "PANIC: " + line)
    monitor.withLock { panics.append(line) }
  }

  /// Every line logged so far.
  var log: [String] { monitor.withLock { lines } }

  /// The logged lines containing `text`.
  func logLines(containing text: String) -> [String] { log.filter { $0.contains(text) } }

  /// Every CPU's state and the log, for failure messages.
  var stateReport: String {
    let states = cpus.map(\.summary).joined(separator: "; ")
    return "state: \(states); log: \(log.suffix(12))"
  }
}
