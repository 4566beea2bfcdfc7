import Glibc
import LockstepKernel
import Synchronization
import Testing

/// A host stand-in for a machine being stopped with `smp_send_stop`: `cpuCount`
/// `FakeSendStopCPU`s on host threads, one `SendStop<FakeSendStopPlatform>`, and a
/// `CPULifecycle` per CPU (as the kernel's per-CPU blocks hold them), each put in the
/// state the test asks for through the real transitions.
///
/// Create one per test with `FakeSendStopMachine.with(...)`: it tears the machine down
/// after the body (parked CPUs leave then), and turns panics, broken platform
/// contracts and threads that would not leave into test issues.
final class FakeSendStopMachine: @unchecked Sendable {
  /// The start-up attempt (the STARTUP page) every CPU put in a start-up state has.
  static let startupAttempt: UInt32 = 8

  /// The stop under test.
  let sendStop: SendStop<FakeSendStopPlatform>
  /// The CPUs, by index. Set in `init`, before any thread starts.
  private(set) var cpus: [FakeSendStopCPU] = []
  private let lifecycles: UnsafeMutablePointer<CPULifecycle>
  private let monitor = Monitor()
  /// Guarded by `monitor`, as are the two below.
  private var lines: [String] = []
  private var panics: [String] = []
  /// Every `sendStopRequest`, in order.
  private var requestLog: [(mechanism: StopMechanism, cpus: CPUSet)] = []

  /// Machines whose threads would not leave; kept alive so those threads never touch
  /// freed memory. Guarded by `strandedMonitor`.
  nonisolated(unsafe) private static var stranded: [FakeSendStopMachine] = []
  private static let strandedMonitor = Monitor()

  /// A machine whose CPU `i` is in `states[i]`, all threads running, interrupts on.
  init(states: [CPUState], settings: SendStop<FakeSendStopPlatform>.Settings) {
    sendStop = SendStop(cpuCount: states.count, settings: settings)
    lifecycles = .allocate(capacity: states.count)
    for (cpu, state) in states.enumerated() {
      (lifecycles + cpu).initialize(to: CPULifecycle())
      lifecycles[cpu].drive(to: state, attempt: Self.startupAttempt)
    }
    cpus = states.indices.map { FakeSendStopCPU(index: $0, machine: self) }
    for (cpu, state) in zip(cpus, states) where [.online, .dying, .dead].contains(state) {
      cpu.hasBeenOnline.store(true, ordering: .relaxed)
    }
    for cpu in cpus { cpu.start() }
  }

  deinit {
    lifecycles.deinitialize(count: cpus.count)
    lifecycles.deallocate()
  }

  /// Runs `body` with a fresh machine of `cpus` CPUs (or one CPU per entry of `states`,
  /// all online by default), then tears it down and records as issues any panic and
  /// any CPU that would not leave.
  static func with(
    cpus cpuCount: Int = 4, states: [CPUState]? = nil,
    settings: SendStop<FakeSendStopPlatform>.Settings = .init(attempts: 2, timeoutNanoseconds: 20_000_000),
    sourceLocation: SourceLocation = #_sourceLocation, _ body: (FakeSendStopMachine) throws -> Void
  ) rethrows {
    let machine = FakeSendStopMachine(
      states: states ?? Array(repeating: .online, count: cpuCount), settings: settings)
    defer { machine.shutDown(sourceLocation: sourceLocation) }
    try body(machine)
  }

  private func shutDown(sourceLocation: SourceLocation) {
    let deadline = HostClock.deadline(after: 3)
    let stuck = cpus.filter { !$0.stop(before: deadline) }.map(\.index.rawValue)
    if !stuck.isEmpty {
      Issue.record("fake CPUs \(stuck) did not leave; \(stateReport)", sourceLocation: sourceLocation)
      Self.strandedMonitor.withLock { Self.stranded.append(self) }
    }
    for line in monitor.withLock({ panics }) {
      Issue.record("panic: \(line)", sourceLocation: sourceLocation)
    }
  }

  // MARK: Running code on CPUs

  /// `cpu`'s lifecycle (the kernel's `PerCPU.block(cpu).pointee.lifecycle`).
  func lifecycle(_ cpu: Int) -> UnsafeMutablePointer<CPULifecycle> { lifecycles + cpu }

  /// `cpu`'s lifecycle state now.
  func state(of cpu: Int) -> CPUState { lifecycles[cpu].state }

  /// Starts `body` on CPU `cpu` and returns at once.
  @discardableResult
  func start(on cpu: Int, _ body: @escaping () -> Void) -> FakeJob {
    let job = FakeJob(cpu: cpu, body)
    cpus[cpu].submit(job)
    return job
  }

  /// Runs `body` on CPU `cpu` and returns its result, or nil (with a recorded issue) if
  /// it did not finish within `seconds`.
  func run<T>(
    on cpu: Int, timeout seconds: Double = 2, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: @escaping () -> T
  ) -> T? {
    let box = ResultBox<T>()
    let job = start(on: cpu) { box.value = body() }
    guard job.wait(timeout: seconds) else {
      Issue.record(
        "job on CPU \(cpu) did not finish within \(seconds) s; \(stateReport)", sourceLocation: sourceLocation
      )
      return nil
    }
    return box.value
  }

  /// `stopOthers(reason)` on CPU `cpu` with interrupts off, as `SMPStop.stopOtherCPUs`
  /// calls it; its result, or nil if the caller did not return within `seconds` (an
  /// issue is recorded) or the call itself returned nil.
  func stopOthers(
    from cpu: Int = 0, _ reason: SendStopReason = .shutdown, timeout seconds: Double = 2,
    sourceLocation: SourceLocation = #_sourceLocation
  ) -> SendStopOutcome? {
    let stop = sendStop
    let outcome = run(on: cpu, timeout: seconds, sourceLocation: sourceLocation) {
      FakeSendStopPlatform.disableInterrupts()
      return stop.stopOthers(reason)
    }
    return outcome ?? nil
  }

  /// How `cpu` acknowledged its stop (`.none` if it has not).
  func acknowledgement(of cpu: Int) -> StopMechanism { sendStop.acknowledgement(of: CPUIndex(cpu)).mechanism }

  /// When `cpu` acknowledged (platform nanoseconds; 0 if it has not).
  func acknowledgementTime(of cpu: Int) -> UInt64 { sendStop.acknowledgement(of: CPUIndex(cpu)).nanoseconds }

  /// The CPUs of `indices`, as a set.
  static func set(_ indices: Int...) -> CPUSet { CPUSet(indices.map { CPUIndex($0) }) }

  // MARK: Platform back end

  /// `FakeSendStopPlatform.sendStopRequest`: logs the request and delivers it. A target
  /// that never finished starting, or the stopping CPU itself, breaks the platform's
  /// contract and is reported as a panic.
  func sendStopRequest(_ mechanism: StopMechanism, to targets: CPUSet) {
    monitor.withLock { requestLog.append((mechanism, targets)) }
    if mechanism != .vector && mechanism != .nmi { append(panic: "stop request by \(mechanism.name)") }
    let caller = FakeSendStopCPU.current.index
    for cpu in targets {
      if cpu == caller { append(panic: "stop request to the stopping CPU \(cpu.rawValue)") }
      if !cpus[cpu.rawValue].hasBeenOnline.load(ordering: .relaxed) {
        append(panic: "stop request to CPU \(cpu.rawValue), which never finished starting")
      }
      cpus[cpu.rawValue].deliver(mechanism)
    }
  }

  /// Every `sendStopRequest` so far, in order.
  var requests: [(mechanism: StopMechanism, cpus: CPUSet)] { monitor.withLock { requestLog } }

  /// `FakeSendStopPlatform.log`.
  func append(log line: String) { monitor.withLock { lines.append(line) } }

  /// A panic or a broken contract: remembered for `with(...)` to report.
  func append(panic line: String) {
    append(log: "PANIC: " + line)
    monitor.withLock { panics.append(line) }
  }

  /// Every line logged so far.
  var log: [String] { monitor.withLock { lines } }

  /// Every CPU's state and the log's end, for failure messages.
  var stateReport: String {
    "state: \(cpus.map(\.summary).joined(separator: "; ")); log: \(log.suffix(8))"
  }
}

extension CPULifecycle {
  /// Test set-up: takes a fresh lifecycle (`possible`) to `state` through the real
  /// transitions, start-up ones for `attempt`. Traps if a transition is refused.
  func drive(to state: CPUState, attempt: UInt32 = FakeSendStopMachine.startupAttempt) {
    switch state {
    case .possible:
      break
    case .starting:
      precondition(claimForStart(attempt: attempt))
    case .retrying:
      drive(to: .starting, attempt: attempt)
      precondition(claimForRetry())
    case .online:
      drive(to: .starting, attempt: attempt)
      precondition(join(attempt: attempt) == .joined)
    case .failed:
      drive(to: .starting, attempt: attempt)
      precondition(giveUp())
    case .dying:
      drive(to: .online, attempt: attempt)
      precondition(beginDying())
    case .dead:
      drive(to: .dying, attempt: attempt)
      reportDead()
    case .stopped:
      precondition(claimForStop() == .notRunning)
    }
    precondition(self.state == state, "drive(to: \(state)) ended in \(self.state)")
  }
}

extension CPUSet: CustomTestStringConvertible {
  /// The CPUs as the kernel logs them ("[1-2,4]"), for expectation failures.
  public var testDescription: String {
    var line = LogLine()
    line.append(cpuList: map(\.rawValue))
    return "[" + line.withBytes { String(decoding: $0, as: UTF8.self) } + "]"
  }
}
