import Synchronization

/// Stopping every other CPU for good, on shutdown and on panic, even when some of them
/// do not listen: a normal IPI first, NMI on later attempts, each attempt's wait
/// bounded, and no CPU escaping because it was still starting.
///
/// The retry loop follows the RFC "smp: address races of starting CPUs while stopping"
/// (Linux `__smp_send_stop_all`): only the first caller proceeds; for attempt
/// 1...attempts while CPUs remain, the platform is asked to stop them with the
/// attempt's mechanism, then the caller waits up to the timeout for their
/// acknowledgements. The RFC only narrows the race with starting CPUs; here the caller
/// first claims every CPU that is not running (`CPULifecycle.claimForStop`), so that no
/// CPU can start or finish starting afterwards, and waits for the starting ones that
/// may run start-up code until they park. docs/send-stop.md gives the argument.
public final class SendStop<Platform: SendStopPlatform> {
  /// Attempts, and each attempt's wait.
  public struct Settings: Sendable {
    /// Attempts in all, at least 1 (`stop_retries=`). Linux RFC: 2.
    public var attempts: Int
    /// Each attempt's wait for acknowledgements (`stop_timeout_us=`).
    public var timeoutNanoseconds: UInt64
    /// The last attempt waits without bound, reporting every second
    /// (`stop_wait=forever`).
    public var lastAttemptWaitsForever: Bool

    public init(attempts: Int = 2, timeoutNanoseconds: UInt64 = SendStop.defaultTimeoutNanoseconds,
      lastAttemptWaitsForever: Bool = false)
    {
      precondition(attempts >= 1 && timeoutNanoseconds > 0, "send-stop settings out of range")
      self.attempts = attempts
      self.timeoutNanoseconds = timeoutNanoseconds
      self.lastAttemptWaitsForever = lastAttemptWaitsForever
    }
  }

  /// The default wait of each attempt: 10 ms, from measurement (docs/send-stop.md,
  /// docs/benchmarks.md): under TCG on two host cores an idle CPU answers the stop
  /// vector in ~0.1 ms at 8 vCPUs (p99 ~4 ms), a busy one in ~4 ms; a CPU with
  /// interrupts off is then stopped by NMI ~10 ms after the call, against Linux's
  /// second.
  public static var defaultTimeoutNanoseconds: UInt64 { 10_000_000 }

  public let cpuCount: Int
  public let settings: Settings
  let records: UnsafeMutablePointer<SendStopRecord>
  /// Per CPU: 1 while a rehearsal's stopped CPU waits with interrupts off for the
  /// rehearsal's end (a separate array: the platform is handed the byte's address).
  let rehearsalWaiters: UnsafeMutablePointer<Atomic<UInt8>>
  /// 0 until the first caller claims the stop; then its CPU index + 1 (or -1 - APIC-less
  /// caller: any negative value for a CPU without an index).
  let owner = Atomic<Int>(0)
  /// Set by the first caller before it claims any CPU; read by a starting AP before it
  /// tries to go online. Sequentially consistent (see `claimForStop`).
  let inProgress = Atomic<Bool>(false)
  /// The reason of the stop in progress (relaxed: published by `inProgress`).
  private let reasonWord = Atomic<UInt8>(0)
  /// The CPU running a start-up (INIT-SIPI-SIPI and its wait) now, -1 when none; one at
  /// a time (boot, then under the hotplug lock).
  private let starter = Atomic<Int>(-1)
  /// Set when the first caller's wait has ended.
  let finished = Atomic<Bool>(false)
  /// The outcome, written by the caller before `finished`.
  nonisolated(unsafe) private var lastOutcome = SendStopOutcome()
  /// Counts rehearsals ended; tags every entry and acknowledgement (24 bits of it).
  let generation = Atomic<UInt32>(0)
  /// Whether the stop in progress is a rehearsal (SendStopRehearsal.swift).
  let rehearsing = Atomic<Bool>(false)

  /// Records for `cpuCount` possible CPUs. Allocates: at set-up, before any AP starts.
  public init(cpuCount: Int, settings: Settings = Settings()) {
    self.cpuCount = cpuCount
    self.settings = settings
    records = .allocate(capacity: cpuCount)
    for cpu in 0..<cpuCount { (records + cpu).initialize(to: SendStopRecord()) }
    rehearsalWaiters = .allocate(capacity: cpuCount)
    for cpu in 0..<cpuCount { (rehearsalWaiters + cpu).initialize(to: Atomic<UInt8>(0)) }
  }

  deinit {
    records.deinitialize(count: cpuCount)
    records.deallocate()
    rehearsalWaiters.deinitialize(count: cpuCount)
    rehearsalWaiters.deallocate()
  }

  // MARK: The stopping CPU

  /// Stops every other CPU for good and returns what happened; the running CPU goes
  /// on. Only the first call on the machine proceeds: a later caller on another CPU
  /// stops itself (`Platform.stopThisCPU(.lostTheRace)`), and a later call on the
  /// same CPU returns nil at once. Call with interrupts off; never allocates, waits
  /// only on acknowledgements, each attempt bounded.
  /// Linux: smp_send_stop() and crash_smp_send_stop() (__smp_send_stop_all()).
  ///
  /// `caller` names the running CPU when `Platform.currentCPU` cannot (an AP that
  /// panicked before it found its per-CPU block): it is then not waited for.
  public func stopOthers(_ reason: SendStopReason, caller: CPUIndex? = nil) -> SendStopOutcome? {
    run(reason, rehearsal: false, caller: caller ?? Platform.currentCPU)
  }

  func run(_ reason: SendStopReason, rehearsal: Bool, caller me: CPUIndex) -> SendStopOutcome? {
    let myID = me.isKnown ? me.rawValue + 1 : -1
    // Relaxed: the claim only decides who proceeds; the flag below publishes the stop.
    let claim = owner.compareExchange(expected: 0, desired: myID, ordering: .relaxed)
    if !claim.exchanged {
      if claim.original == myID { return nil }
      // The winner raises the in-progress flag right after its claim: wait for it (at
      // most 1 s), so that this CPU's own stop counts for that stop.
      let start = Platform.nanoseconds()
      while !isInProgress && Platform.nanoseconds() &- start < 1_000_000_000 { Platform.relax() }
      Platform.stopThisCPU(.lostTheRace)
    }
    reasonWord.store(reason.rawValue, ordering: .relaxed)
    rehearsing.store(rehearsal, ordering: .relaxed)
    // Sequentially consistent: before any claim below, and against a starting AP's
    // look at it before it tries to go online (`mustPark`).
    inProgress.store(true, ordering: .sequentiallyConsistent)
    var outcome = SendStopOutcome()
    outcome.caller = me
    outcome.reason = reason
    outcome.startNanoseconds = Platform.nanoseconds()
    for index in 0..<cpuCount where index != me.rawValue {
      let cpu = CPUIndex(index)
      switch rehearsal ? Self.claimWithoutChange(Platform.lifecycleState(of: cpu)) : Platform.claimForStop(cpu) {
      case .running: outcome.running.insert(cpu)
      case .wasStarting: outcome.starting.insert(cpu)
      case .notRunning: break
      }
    }
    var pending = unresolved(outcome.running, outcome.starting, caller: me)
    var attempt = 0
    while !pending.isEmpty && attempt < settings.attempts {
      attempt += 1
      let mechanism = StopMechanism.forAttempt(attempt)
      let targets = pending.intersection(outcome.running)
      if mechanism == .nmi {
        // Release: the request is visible to the NMI handler that the NMI starts;
        // pairs with the acquire in `isRequestedByNMI`.
        for cpu in targets { records[cpu.rawValue].nmiRequested.store(true, ordering: .releasing) }
        outcome.sentNMI.formUnion(targets)
      }
      if !targets.isEmpty { Platform.sendStopRequest(mechanism, to: targets) }
      let waitedFor = pending
      pending = wait(for: pending, outcome: outcome, attempt: attempt)
      outcome.endNanoseconds = Platform.nanoseconds()
      if rehearsal { continue }
      // Said once the attempt's wait is over, not before: printing a line holds the
      // machine's emulated UART, and under QEMU that delays the other vCPUs' interrupt
      // delivery by the line's length (measured: ~1.1 ms for every CPU at 8 vCPUs).
      announce(attempt: attempt, mechanism: mechanism, targets: targets, waitingFor: waitedFor, reason: reason)
      if !pending.isEmpty {
        var line: LogLine = "smp: failed to stop secondary CPUs "
        line.append(cpuList: pending.lazy.map { $0.rawValue })
        line.append(" (CPU ")
        line.append(decimal: me.rawValue)
        line.append(" waited ")
        line.append(decimal: Int(truncatingIfNeeded: (Platform.nanoseconds() &- outcome.startNanoseconds) / 1000))
        line.append(" us in all for their acknowledgement; attempt ")
        line.append(decimal: attempt)
        line.append(" of ")
        line.append(decimal: settings.attempts)
        line.append(")")
        Platform.log(line)
        if attempt < settings.attempts { Platform.log("smp: Retrying SMP stop call...") }
      }
    }
    outcome.attempts = attempt
    outcome.failed = pending
    if attempt == 0 { outcome.endNanoseconds = Platform.nanoseconds() }
    lastOutcome = outcome
    // Release: the outcome is written; pairs with the acquire in `outcome`.
    finished.store(true, ordering: .releasing)
    return outcome
  }

  static func claimWithoutChange(_ state: CPUState) -> StopClaim {
    switch state {
    case .online, .dying: .running
    case .starting, .retrying: .wasStarting
    default: .notRunning
    }
  }

  /// The outcome of the stop, once its caller's wait has ended; nil before.
  public var outcome: SendStopOutcome? {
    finished.load(ordering: .acquiring) ? lastOutcome : nil
  }

  private func announce(
    attempt: Int, mechanism: StopMechanism, targets: CPUSet, waitingFor pending: CPUSet, reason: SendStopReason
  ) {
    var line: LogLine = "smp: stopping secondary CPUs "
    line.append(cpuList: pending.lazy.map { $0.rawValue })
    line.append(reason == .crash ? " (crash, attempt " : " (attempt ")
    line.append(decimal: attempt)
    line.append(" of ")
    line.append(decimal: settings.attempts)
    line.append(": ")
    line.append(mechanism == .nmi ? "NMI" : "stop vector")
    if targets.count < pending.count {
      line.append(" to ")
      line.append(decimal: targets.count)
      line.append(", the rest starting")
    }
    line.append(")")
    Platform.log(line)
  }

  /// Waits until every CPU of `pending` is resolved or the attempt's bound passes;
  /// returns those still unresolved. The last attempt with `lastAttemptWaitsForever`
  /// has no bound and reports the CPUs it waits for every second.
  private func wait(for pending: CPUSet, outcome: SendStopOutcome, attempt: Int) -> CPUSet {
    let start = Platform.nanoseconds()
    let forever = settings.lastAttemptWaitsForever && attempt == settings.attempts
    var nextReport = start &+ 1_000_000_000
    var left = pending
    while true {
      // The time first, then the look: a caller that lost its CPU for a while (a vCPU
      // descheduled by its host) still looks once more after the bound has passed.
      let now = Platform.nanoseconds()
      left = unresolved(left.intersection(outcome.running), left.intersection(outcome.starting), caller: outcome.caller)
      if left.isEmpty { return left }
      if !forever && now &- start >= settings.timeoutNanoseconds { return left }
      if forever && now >= nextReport {
        var line: LogLine = "smp: stop_wait=forever: CPU "
        line.append(decimal: outcome.caller.rawValue)
        line.append(" still waits for CPUs ")
        line.append(cpuList: left.lazy.map { $0.rawValue })
        line.append(" after ")
        line.append(decimal: Int(truncatingIfNeeded: (now &- start) / 1_000_000))
        line.append(" ms")
        Platform.log(line)
        nextReport = now &+ 1_000_000_000
      }
      Platform.relax()
    }
  }

  /// The CPUs of `running` and `starting` not yet known to be stopped.
  ///
  /// A running CPU is stopped once it acknowledges, or once it is dead (it was going
  /// down and got there first: halted with interrupts off, held by INIT).
  ///
  /// A starting CPU is stopped once it acknowledges (it parked), or once no STARTUP can
  /// reach it any more and none reached it since its last INIT: its starter is
  /// stopped, finished, or this CPU, and `mayRunStartupCode` is false. The starter
  /// writes that flag before its STARTUPs and finishes (or acknowledges its own stop)
  /// after them, so acquiring the starter's state first makes the flag final.
  private func unresolved(_ running: CPUSet, _ starting: CPUSet, caller: CPUIndex) -> CPUSet {
    var left = CPUSet()
    for cpu in running where !isAcknowledged(cpu) && !records[cpu.rawValue].claimedDead.load(ordering: .relaxed) {
      // Gone down on its own (halted with interrupts off, held by INIT): claimed now, so
      // that no start can take it back up behind the stop. A claim that finds it
      // starting again keeps it pending.
      if !rehearsing.load(ordering: .relaxed) && Platform.lifecycleState(of: cpu) == .dead
        && Platform.claimForStop(cpu) == .notRunning
      {
        records[cpu.rawValue].claimedDead.store(true, ordering: .relaxed)
        continue
      }
      left.insert(cpu)
    }
    guard !starting.isEmpty else { return left }
    // Acquire pairs with the release in `startupEnds`; the acknowledgement's acquire
    // covers a starter that was stopped.
    let starterNow = starter.load(ordering: .acquiring)
    let starterQuiet =
      starterNow < 0 || starterNow == caller.rawValue || isAcknowledged(CPUIndex(starterNow))
    for cpu in starting where !isAcknowledged(cpu) {
      if starterQuiet && !records[cpu.rawValue].mayRunStartupCode.load(ordering: .acquiring) { continue }
      left.insert(cpu)
    }
    return left
  }

  /// Whether `cpu` acknowledged this stop. Acquire pairs with the release in
  /// `acknowledge`: what it did before is visible.
  public func isAcknowledged(_ cpu: CPUIndex) -> Bool {
    acknowledgement(of: cpu).mechanism != .none
  }

  /// How `cpu` acknowledged this stop (`.none` if it has not), and when (platform
  /// nanoseconds).
  public func acknowledgement(of cpu: CPUIndex) -> (mechanism: StopMechanism, nanoseconds: UInt64) {
    let raw = records[cpu.rawValue].acknowledgement.load(ordering: .acquiring)
    guard raw != 0 && raw >> 8 == generation.load(ordering: .relaxed) & 0xFF_FFFF else { return (.none, 0) }
    return (
      StopMechanism(rawValue: UInt8(truncatingIfNeeded: raw)) ?? .none,
      records[cpu.rawValue].acknowledgedAt.load(ordering: .relaxed)
    )
  }

  // MARK: The stopped CPU

  /// Whether a stop is in progress (or done). Any context.
  public var isInProgress: Bool { inProgress.load(ordering: .sequentiallyConsistent) }

  /// The reason of the stop in progress; `.shutdown` before any.
  public var reason: SendStopReason {
    SendStopReason(rawValue: reasonWord.load(ordering: .relaxed)) ?? .shutdown
  }

  /// For an NMI on `cpu`: whether the stopping CPU sent it to stop this CPU. Acquire
  /// pairs with the release before the NMI was sent.
  public func isRequestedByNMI(_ cpu: CPUIndex) -> Bool {
    isInProgress && records[cpu.rawValue].nmiRequested.load(ordering: .acquiring)
  }

  /// `cpu` enters the path of the stop in progress; false if no stop is in progress,
  /// or if it had entered this one already (the stop vector's handler is running, and
  /// now an NMI came too: the NMI leaves it be).
  ///
  /// The generation is read before the in-progress flag: a CPU that comes late to a
  /// rehearsal that has ended either finds no stop in progress or enters the ended
  /// rehearsal's generation, whose acknowledgement no later stop counts. Acquire pairs
  /// with the release in `endRehearsal`.
  public func enter(_ cpu: CPUIndex) -> Bool {
    let ticket = (generation.load(ordering: .acquiring) & 0xFF_FFFF) + 1
    guard isInProgress else { return false }
    // Relaxed: the CPU's own record.
    return records[cpu.rawValue].entered.exchange(ticket, ordering: .relaxed) != ticket
  }

  /// `cpu`'s acknowledgement of the stop it entered: its last side effect is done and
  /// it will only halt from now on. Release: pairs with the acquire in `isAcknowledged`.
  public func acknowledge(_ cpu: CPUIndex, _ mechanism: StopMechanism) {
    let ticket = records[cpu.rawValue].entered.load(ordering: .relaxed)
    let stopGeneration = ticket == 0 ? generation.load(ordering: .relaxed) & 0xFF_FFFF : ticket - 1
    records[cpu.rawValue].acknowledgedAt.store(Platform.nanoseconds(), ordering: .relaxed)
    records[cpu.rawValue].acknowledgement.store(
      stopGeneration << 8 | UInt32(mechanism.rawValue), ordering: .releasing)
  }

  /// For a starting AP just before it tries to go online: whether it must park
  /// instead (then it acknowledges `.parkedWhileStarting`). Sequentially consistent:
  /// see `stopOthers`. Even when this says no, `CPULifecycle.join` fails if the stop
  /// claimed the CPU first: this look only lets the AP park sooner.
  public func mustPark() -> Bool { isInProgress }

  // MARK: The CPU that starts others

  /// The running CPU begins a start-up (INIT, STARTUP, the wait, a retry, the verdict).
  public func startupBegins() {
    // Relaxed: published by the STARTUPs' flags that follow.
    starter.store(Platform.currentCPU.rawValue, ordering: .relaxed)
  }

  /// The start-up is over: no STARTUP or INIT follows. Release: every flag written
  /// during it is visible to a stop that sees it over; pairs with `unresolved`.
  public func startupEnds() {
    starter.store(-1, ordering: .releasing)
  }

  /// Before a STARTUP to `cpu` (true) or an INIT to it (false). Release: visible to a
  /// stop that sees the starter quiet; pairs with the acquire in `unresolved`.
  public func noteStartup(of cpu: CPUIndex, mayRun: Bool) {
    records[cpu.rawValue].mayRunStartupCode.store(mayRun, ordering: .sequentiallyConsistent)
  }
}
