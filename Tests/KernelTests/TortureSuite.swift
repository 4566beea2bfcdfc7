import Synchronization

/// `ktest=torture`: every online CPU issues a random mix of all the cross-calls at
/// random targets, after Linux's kernel/scftorture.c.
///
/// Each call carries a probe. The caller sets the probe's "in" mark (relaxed) before
/// sending; the handler checks it runs on the probe's CPU and sees "in", then sets "out"
/// (relaxed); a waiting caller checks "out" when the call returns. Relaxed marks make
/// the protocol's own ordering (queue push/take, record unlock) the thing under test.
/// Counters of errors must end at 0 and executions must equal calls issued.
/// `torture_ops=N` (default 100000) calls in all; `torture_seed=S` (default: the TSC).
enum TortureSuite {
  static let suite = KernelTestSuite(
    name: "torture", cases: [KernelTestCase(name: "random_calls_from_every_cpu", run: run)])

  nonisolated(unsafe) static var parameters: BootParameters? = nil

  /// Torture threads on each online CPU. Threads of one class do not preempt each
  /// other, so the threads of one CPU take turns, each running its share to the end.
  static let threadsPerCPU = 2

  /// How long the boot CPU waits for the threads of the other CPUs, in ms.
  static let boundMilliseconds: UInt64 = 300_000

  /// The case: the torture with `threadsPerCPU` threads on every CPU.
  static func run() -> TestResult { run(threadsPerCPU: threadsPerCPU) }

  /// The torture with `threadsPerCPU` threads (`torture/N`) on every online CPU, the
  /// calls shared equally among them.
  static func run(threadsPerCPU: Int) -> TestResult {
    let online = CPUs.online
    let total = parameters?.integer("torture_ops") ?? 100_000
    let seed = UInt64(parameters?.integer("torture_seed") ?? Int(CPUInstructions.readTSC() & 0xFFFF_FFFF))
    let workers = threadsPerCPU * online.count
    let state = TortureState(workers: workers, operationsPerWorker: max(1, total / workers), seed: seed)
    KTAP.diagnostic(
      "seed \(seed) (torture_seed=\(seed) repeats it), \(total) operations from \(threadsPerCPU) threads on each of \(online.count) CPUs"
    )
    let start = Clock.nanoseconds()
    if let late = runWorkers(state, on: online, threadsPerCPU: threadsPerCPU, bound: boundMilliseconds) {
      return .fail("torture threads, bound \(boundMilliseconds) ms: \(line: late)")
    }
    return state.verdict(elapsed: Clock.nanoseconds() - start)
  }

  /// Starts `threadsPerCPU` workers of `state` on each CPU of `online` and waits for them,
  /// `bound` ms in all. Returns nil once all have ended, else the group's report; then
  /// `state` is kept alive for good, since the late threads still use it. The soak runs
  /// its cross-call rounds through this too.
  static func runWorkers(
    _ state: TortureState, on online: CPUSet, threadsPerCPU: Int, bound: UInt64
  ) -> LogLine? {
    let group = ThreadGroup(capacity: threadsPerCPU * online.count)
    // Round robin over the CPUs, so that every CPU has a thread running as early as possible.
    for round in 0..<threadsPerCPU {
      for (position, cpu) in online.enumerated() {
        let number = round * online.count + position
        group.start(ThreadName("torture", number), on: cpu, TortureWorker.entry, state.assignment(number))
      }
    }
    guard let late = group.wait(milliseconds: bound) else { return nil }
    _ = Unmanaged.passRetained(state)
    return late
  }
}

/// What all torture threads share. Counters are relaxed: the thread group's end
/// (acquire/release) orders them before the verdict.
final class TortureState {
  let operationsPerWorker: Int
  let seed: UInt64
  /// When workers stop early (`Clock.nanoseconds`), whatever their share: the soak's
  /// timed rounds. Nil for the `torture` suite, which runs every share to the end.
  let deadline: UInt64?
  let issued = Atomic<Int>(0)
  let executed = Atomic<Int>(0)
  let errors = Atomic<Int>(0)
  let skipped = Atomic<Int>(0)

  /// What each worker is handed: the state and its number, which seeds its random
  /// sequence (so that `torture_seed` repeats every worker's calls).
  struct Assignment {
    /// The torture's shared counters.
    unowned(unsafe) let state: TortureState
    /// The worker's number, `N` of `torture/N`.
    let number: Int
  }
  private let assignments: UnsafeMutablePointer<Assignment>
  private let workers: Int

  /// The state for `workers` threads of `operationsPerWorker` calls each, ending at
  /// `deadline` if one is given.
  init(workers: Int, operationsPerWorker: Int, seed: UInt64, deadline: UInt64? = nil) {
    self.workers = workers
    self.operationsPerWorker = operationsPerWorker
    self.seed = seed
    self.deadline = deadline
    assignments = .allocate(capacity: workers)
    for number in 0..<workers {
      (assignments + number).initialize(to: Assignment(state: self, number: number))
    }
  }

  deinit {
    assignments.deinitialize(count: workers)
    assignments.deallocate()
  }

  /// The argument for worker `number`'s thread.
  func assignment(_ number: Int) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(assignments + number) }

  /// The assignment a worker's thread was given.
  static func from(_ info: UnsafeMutableRawPointer?) -> Assignment {
    info!.assumingMemoryBound(to: Assignment.self).pointee
  }

  /// Counts an error and says what it was (the first few only, to keep the log short).
  func fail(_ line: LogLine) {
    if errors.wrappingAdd(1, ordering: .relaxed).newValue <= 5 { KTAP.diagnostic("torture: \(line: line)") }
  }

  func verdict(elapsed: UInt64) -> TestResult {
    let issued = issued.load(ordering: .relaxed)
    let executed = executed.load(ordering: .relaxed)
    let errors = errors.load(ordering: .relaxed)
    let perSecond = elapsed > 0 ? UInt64(executed) * 1_000_000_000 / elapsed : 0
    KTAP.diagnostic(
      "\(issued) calls issued, \(executed) run, \(errors) errors, \(skipped.load(ordering: .relaxed)) async skips (record busy), \(elapsed / 1_000_000) ms, \(perSecond) calls/s"
    )
    if errors != 0 { return .fail("\(errors) errors (seed \(seed))") }
    return issued == executed ? .pass : .fail("\(issued) calls issued but \(executed) ran (seed \(seed))")
  }
}

/// One call's marks. `target` is the CPU that must run it; -1 when not expected to.
struct TortureProbe: ~Copyable {
  var target: Int
  let marks = Atomic<Int>(0)  // bit 0: in (caller), bit 1: out (handler)
  unowned(unsafe) let state: TortureState

  init(target: Int, state: TortureState) {
    self.target = target
    self.state = state
  }

  static let markIn = 1
  static let markOut = 2
}

/// The handlers: one probe, or an array of probes indexed by CPU number.
enum TortureHandlers {
  static let one: CallFunction = { info in
    check(info!.assumingMemoryBound(to: TortureProbe.self))
  }

  static let perCPU: CallFunction = { info in
    let probes = info!.assumingMemoryBound(to: TortureProbe.self)
    check(probes + PerCPU.currentCPU.rawValue)
  }

  private static func check(_ probe: UnsafeMutablePointer<TortureProbe>) {
    let state = probe.pointee.state
    let me = PerCPU.currentCPU.rawValue
    if probe.pointee.target != me {
      state.fail("call for CPU \(probe.pointee.target) ran on CPU \(me)")
    }
    if probe.pointee.marks.load(ordering: .relaxed) & TortureProbe.markIn == 0 {
      state.fail("CPU \(me) ran a call before its caller's in-mark was visible")
    }
    probe.pointee.marks.wrappingAdd(TortureProbe.markOut, ordering: .relaxed)
    state.executed.wrappingAdd(1, ordering: .relaxed)
  }
}
