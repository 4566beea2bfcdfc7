import Glibc
import LockstepKernel
import Synchronization
import Testing

/// A host stand-in for an SMP machine running the real `Scheduler`: `cpuCount`
/// `FakeSchedCPU`s, each with an idle thread that adopts it (as an AP's idle loop does)
/// and naps when nothing is runnable, and test threads made with `spawn`.
///
/// With `stoppers: true` it also runs the stop machinery: a `Stoppers` with a stopper
/// thread (`migration/N`) on every CPU, started as the kernel starts it (FakeStopPlatform.swift).
///
/// Create one per test with `FakeSchedMachine.with(...)`: it stops the machine after
/// the body, records panics and host threads that would not leave as test issues, and
/// keeps a machine whose threads are stuck alive so they never touch freed memory.
final class FakeSchedMachine: @unchecked Sendable {
  /// The scheduler under test.
  let scheduler: Scheduler<FakeSchedPlatform>
  /// The CPUs, by index. Set in `init`, before any host thread starts.
  private(set) var cpus: [FakeSchedCPU] = []
  /// The stop machinery, if the machine has it. Set in `init`, before any host thread
  /// starts.
  private(set) var stopMachinery: Stoppers<FakeSchedPlatform>? = nil
  /// CPUs a test marked inactive (`FakeSchedPlatform.isActive`), one bit each; relaxed:
  /// set by the test before the kernel threads that read it are started or told to go.
  let inactiveCPUs = Atomic<UInt64>(0)
  /// How long sending a reschedule IPI takes (0: no time): under a hypervisor the
  /// ICR write exits to the host, microseconds during which the sender holds on to
  /// whatever it holds. Set in `init`.
  let ipiNanoseconds: UInt64
  private let stopping = Atomic<Bool>(false)
  private let abandoned = Atomic<Bool>(false)
  private let monitor = Monitor()
  /// Every kernel thread, idle ones first; they own their `KernelThread`s. Guarded by
  /// `monitor`, as are the three below.
  private var threads: [FakeKernelThread] = []
  /// Host threads started and not yet left.
  private var liveHostThreads = 0
  private var lines: [String] = []
  private var panics: [String] = []

  nonisolated(unsafe) private static var stranded: [FakeSchedMachine] = []
  private static let strandedMonitor = Monitor()

  /// A machine with `cpuCount` CPUs, each running its idle thread; with `stoppers`,
  /// also a stopper thread per CPU, created but not yet started (`startStoppers`).
  init(cpuCount: Int, stoppers: Bool = false, ipiNanoseconds: UInt64 = 0) {
    scheduler = Scheduler(cpuCount: cpuCount)
    self.ipiNanoseconds = ipiNanoseconds
    cpus = (0..<cpuCount).map { FakeSchedCPU(index: $0, machine: self) }
    if stoppers { stopMachinery = Stoppers(cpuCount: cpuCount, scheduler: scheduler) }
    for cpu in cpus {
      let idle = FakeKernelThread(
        name: ThreadName("idle", cpu.index.rawValue), priority: .idle, cpu: cpu, leavesWhenStopping: true)
      monitor.withLock { threads.append(idle) }
      startHostThread { self.idleLoop(idle) }
    }
    if let stopMachinery { createStopperThreads(for: stopMachinery) }
  }

  /// Runs `body` with a fresh machine, then stops it. Panics are test issues unless
  /// `expectingPanics`; the body may read `panicLines` for the ones it expects. With
  /// `stoppers`, the stopper threads run before `body` starts (`stoppers` is set);
  /// `ipiNanoseconds` is the time each reschedule IPI takes to send.
  static func with(
    cpus cpuCount: Int, stoppers: Bool = false, ipiNanoseconds: UInt64 = 0, expectingPanics: Bool = false,
    sourceLocation: SourceLocation = #_sourceLocation, _ body: (FakeSchedMachine) throws -> Void
  ) rethrows {
    let machine = FakeSchedMachine(cpuCount: cpuCount, stoppers: stoppers, ipiNanoseconds: ipiNanoseconds)
    defer { machine.shutDown(expectingPanics: expectingPanics, sourceLocation: sourceLocation) }
    if stoppers {
      guard machine.startStoppers(sourceLocation: sourceLocation) else { return }
    }
    try body(machine)
  }

  // MARK: Threads

  /// A kernel thread on `cpu` that will run `body`, created but not runnable: start it
  /// with `start(_:)` from the test, or `scheduler.wake` from a kernel thread. A body
  /// that never returns needs `leavesWhenStopping` (see `FakeKernelThread`).
  func spawn(
    _ prefix: StaticString, _ number: Int? = nil, on cpu: Int, priority: ThreadPriority = .normal,
    leavesWhenStopping: Bool = false, _ body: @escaping () -> Void
  ) -> FakeKernelThread {
    let fake = FakeKernelThread(
      name: ThreadName(prefix, number), priority: priority, cpu: cpus[cpu],
      leavesWhenStopping: leavesWhenStopping)
    monitor.withLock { threads.append(fake) }
    startHostThread {
      fake.cpu.bindCallingThread()
      fake.takeBaton()  // The first switch to it; it arrives with interrupts off.
      FakeSchedPlatform.enableInterrupts()
      body()
      fake.markFinished()
      self.scheduler.exitCurrent()
    }
    return fake
  }

  /// Makes `thread` runnable, through its CPU's interrupt. From the test's host thread.
  func start(_ thread: FakeKernelThread) { thread.cpu.requestStart(of: thread.thread) }

  /// `spawn`, then `start`.
  @discardableResult
  func run(
    _ prefix: StaticString, _ number: Int? = nil, on cpu: Int, priority: ThreadPriority = .normal,
    _ body: @escaping () -> Void
  ) -> FakeKernelThread {
    let thread = spawn(prefix, number, on: cpu, priority: priority, body)
    start(thread)
    return thread
  }

  /// Waits up to `seconds` in all for every one of `threads` to finish its body; on
  /// timeout records an issue naming `what` with the machine's state, returns false.
  @discardableResult
  func waitForAll(
    _ threads: [FakeKernelThread], timeout seconds: Double = 20, _ what: @autoclosure () -> String = "",
    sourceLocation: SourceLocation = #_sourceLocation
  ) -> Bool {
    let deadline = HostClock.deadline(after: seconds)
    guard threads.allSatisfy({ $0.waitFinished(until: deadline) }) else {
      Issue.record(
        "threads did not finish within \(seconds) s \(what()); \(stateReport)", sourceLocation: sourceLocation
      )
      return false
    }
    return true
  }

  private func idleLoop(_ idle: FakeKernelThread) {
    idle.cpu.bindCallingThread()
    scheduler.adopt(idle.thread, asIdle: true)  // Interrupts are off until now.
    while !isStopping {
      FakeSchedPlatform.disableInterrupts()
      if scheduler.needsReschedule {
        scheduler.schedule()
        FakeSchedPlatform.enableInterrupts()
        continue
      }
      FakeSchedPlatform.waitForInterrupt(atMost: 5_000_000)
    }
    leave()
  }

  // MARK: Host threads

  private func startHostThread(_ body: @escaping () -> Void) {
    monitor.withLock { liveHostThreads += 1 }
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    var thread = pthread_t()
    let context = Unmanaged.passRetained(HostThreadBody(body)).toOpaque()
    let status = pthread_create(
      &thread, &attributes,
      { context in
        Unmanaged<HostThreadBody>.fromOpaque(context!).takeRetainedValue().body()
        return nil
      }, context)
    pthread_attr_destroy(&attributes)
    precondition(status == 0, "pthread_create failed")
  }

  /// Ends the calling host thread (a dead kernel thread, an idle thread at stop, or any
  /// thread of an abandoned machine). It must touch nothing of the machine afterwards.
  func leave() -> Never {
    monitor.withLock {
      liveHostThreads -= 1
      monitor.broadcast()
    }
    pthread_exit(nil)
  }

  /// `FakeSchedPlatform.panic`: parks the calling kernel thread until the machine is
  /// abandoned, then leaves.
  func parkUntilAbandoned() -> Never {
    while !isAbandoned { usleep(10_000) }
    leave()
  }

  /// Whether the machine is stopping: idle threads leave when they next run.
  var isStopping: Bool { stopping.load(ordering: .relaxed) }
  /// Whether the machine gave up on its threads: every waiting host thread leaves.
  var isAbandoned: Bool { abandoned.load(ordering: .relaxed) }

  private func shutDown(expectingPanics: Bool, sourceLocation: SourceLocation) {
    stopping.store(true, ordering: .relaxed)
    for cpu in cpus { cpu.raiseInterrupt() }
    // A panicked thread keeps its CPU for good: give up on the machine at once.
    if expectingPanics && !panicLines.isEmpty { abandoned.store(true, ordering: .relaxed) }
    if !waitForHostThreads(seconds: 3) {
      if !expectingPanics {
        Issue.record("host threads would not leave; \(stateReport)", sourceLocation: sourceLocation)
      }
      abandoned.store(true, ordering: .relaxed)
      if !waitForHostThreads(seconds: 5) {
        Issue.record("host threads stuck; machine kept alive", sourceLocation: sourceLocation)
        Self.strandedMonitor.withLock { Self.stranded.append(self) }
      }
    }
    guard !expectingPanics else { return }
    for line in panicLines { Issue.record("kernel panic: \(line)", sourceLocation: sourceLocation) }
  }

  private func waitForHostThreads(seconds: Double) -> Bool {
    monitor.wait(until: HostClock.deadline(after: seconds)) { liveHostThreads == 0 }
  }

  // MARK: Log and reports

  /// `FakeSchedPlatform.log`.
  func append(log line: String) { monitor.withLock { lines.append(line) } }

  /// `FakeSchedPlatform.panic`, or a broken expectation of the fake.
  func append(panic line: String) {
    monitor.withLock {
      lines.append("PANIC: " + line)
      panics.append(line)
    }
  }

  /// Every line logged so far.
  var log: [String] { monitor.withLock { lines } }
  /// Every panic so far.
  var panicLines: [String] { monitor.withLock { panics } }

  /// Threads, CPUs and the end of the log, for failure messages.
  var stateReport: String {
    let threadStates = monitor.withLock { threads }.map(\.summary).joined(separator: " ")
    let cpuStates = cpus.map {
      "CPU \($0.index.rawValue): if=\($0.interruptsOn.load(ordering: .relaxed))"
        + " pending=\($0.interruptPending.load(ordering: .relaxed))"
        + " switches=\(scheduler.switchCount(on: $0.index))"
    }
    return "threads: \(threadStates); \(cpuStates.joined(separator: "; ")); log: \(log.suffix(8))"
  }
}

/// A host thread's closure, boxed to pass through `pthread_create`.
private final class HostThreadBody {
  let body: () -> Void
  init(_ body: @escaping () -> Void) { self.body = body }
}

/// Events in the order kernel threads record them, for order tests. Any host thread.
final class EventLog: @unchecked Sendable {
  private let monitor = Monitor()
  private var events: [String] = []

  /// An empty log.
  init() {}

  /// Appends `event`.
  func record(_ event: String) { monitor.withLock { events.append(event) } }

  /// The events so far.
  var all: [String] { monitor.withLock { events } }
}
