import Synchronization

/// Where a CPU is in its life. Each transition is a compare-exchange owned by one side,
/// so the boot CPU and an AP racing over the same CPU always agree on who won.
///
/// ```
///   possible --claimForStart--> starting --join (the AP)--> online
///                                 |   ^
///                   claimForRetry |   | rearm (after INIT has reset the AP)
///                                 v   |
///                                retrying
///   starting --giveUp--> failed
///
///   online --beginDying (the CPU itself, inside the stop)--> dying
///   dying --reportDead (the CPU itself, from its idle loop)--> dead
///   dead, failed, possible --claimForStart--> starting     (CPU hotplug: cpu_up)
///
///   online, dying --markStopped (the CPU itself, its stop's last step)--> stopped
///   possible, starting, retrying, failed, dead --claimForStop (the stopping CPU)--> stopped
/// ```
/// `stopped` is final: `smp_send_stop` and the crash stop move every CPU there, the
/// running ones themselves and the others by the stopping CPU's claim, so no CPU can
/// start, or finish starting, once a stop has looked at it (docs/send-stop.md).
/// `retrying` and `failed` belong to the boot CPU: an AP that finds either when it tries
/// to join never runs kernel code again (it parks; for `retrying` an INIT is on its
/// way). No INIT is ever sent to a CPU unless the sender first moved it out of
/// `starting` itself, so no INIT reaches an online CPU. docs/cpu-lifecycle.md gives the
/// whole argument.
public enum CPUState: UInt8, Sendable {
  /// Listed in the firmware's table, not started (or beyond `maxcpus=`).
  case possible = 0
  /// INIT-SIPI-SIPI sent or about to be; the AP may join.
  case starting = 1
  /// The boot CPU owns it for a second INIT; the AP may not join.
  case retrying = 2
  /// The AP joined: it runs kernel code and answers interrupts.
  case online = 3
  /// The boot CPU gave up on it and reported it; it runs no kernel code unless a
  /// hotplug `cpu_up` starts it again.
  case failed = 4
  /// Going offline: no longer online, still running its last kernel code (its
  /// stopper's drain, then its idle loop's report). Linux: CPUHP_TEARDOWN_CPU onwards.
  case dying = 5
  /// Offline after having been online: halted with interrupts off, or held in INIT,
  /// ready to start again. Linux: a CPU at CPUHP_OFFLINE.
  case dead = 6
  /// Stopped for good by `smp_send_stop` or the crash stop: halted with interrupts off,
  /// parked before going online, or never to be started. Final.
  case stopped = 7
}

/// What the stopping CPU's claim found a CPU doing (`CPULifecycle.claimForStop`).
public enum StopClaim: Equatable, Sendable {
  /// Online or dying: it runs kernel code and must be sent the stop.
  case running
  /// Starting (or owned for a retry): it may run the start-up path, and will park
  /// before going online; the stop waits for it unless it never got a STARTUP.
  case wasStarting
  /// Not running kernel code and now unable to: never started, given up on, dead or
  /// already stopped.
  case notRunning
}

/// What an AP found when it tried to go online.
public enum JoinOutcome: Equatable, Sendable {
  /// It is online.
  case joined
  /// The boot CPU is about to INIT it for a retry: park without a word (a lock or a
  /// console record held across the INIT would never be released).
  case retryPending
  /// The boot CPU gave up on it (or never started it): park for good.
  case refused(CPUState)
}

/// One CPU's lifecycle state, changed only by the transitions below.
///
/// The word holds the state and the start-up attempt it belongs to (`attempt << 8 |
/// state`). An AP joins only the attempt whose STARTUP it ran (the trampoline hands it
/// the number), so an AP of an earlier attempt that the retry's INIT has not reset yet
/// cannot join the retry's window: no assumption about how soon INIT takes effect.
public struct CPULifecycle: ~Copyable {
  private let raw = Atomic<UInt32>(UInt32(CPUState.possible.rawValue))

  /// A CPU in `possible`.
  public init() {}

  /// The state now. Acquire pairs with the release in `join` (and `markBootCPUOnline`):
  /// a CPU seen online has its per-CPU set-up visible.
  public var state: CPUState { Self.state(of: raw.load(ordering: .acquiring)) }

  /// The start-up attempt the state belongs to (0 before any).
  public var attempt: UInt32 { raw.load(ordering: .relaxed) >> 8 }

  /// The boot CPU itself: online from the start. Release pairs with `state`'s acquire.
  public func markBootCPUOnline() {
    raw.store(Self.word(.online, attempt: 0), ordering: .releasing)
  }

  /// The starting CPU, before the first INIT: `possible`, `dead` or `failed` ->
  /// `starting` for `attempt`. A compare-exchange, so a CPU something else already
  /// claimed is left alone. Relaxed: the start-up IPIs that follow are ordered after it
  /// by the platform's send path (a fence before the ICR write; see LocalAPIC.send).
  public func claimForStart(attempt: UInt32) -> Bool {
    let current = raw.load(ordering: .relaxed)
    switch Self.state(of: current) {
    case .possible, .dead, .failed:
      return transition(from: current, to: Self.word(.starting, attempt: attempt))
    default:
      return false
    }
  }

  /// The CPU itself, inside the stop that takes it down: `online -> dying`. False if it
  /// was not online.
  public func beginDying() -> Bool {
    let current = raw.load(ordering: .relaxed)
    guard Self.state(of: current) == .online else { return false }
    return transition(from: current, to: Self.word(.dying, attempt: current >> 8))
  }

  /// The dying CPU, from its idle loop, its last kernel code done: `dying -> dead`.
  /// Release: everything it did is visible to whoever sees it dead; pairs with
  /// `state`'s acquire.
  public func reportDead() {
    let current = raw.load(ordering: .relaxed)
    precondition(Self.state(of: current) == .dying, "reportDead on a CPU that is not dying")
    raw.store(Self.word(.dead, attempt: current >> 8), ordering: .releasing)
  }

  /// Boot CPU, before re-sending INIT: `starting -> retrying`. False when the AP joined
  /// first: then it is online and must not be INIT'd.
  public func claimForRetry() -> Bool {
    let current = raw.load(ordering: .relaxed)
    guard Self.state(of: current) == .starting else { return false }
    return transition(from: current, to: Self.word(.retrying, attempt: current >> 8))
  }

  /// Boot CPU, after the retry's INIT and before its STARTUP: `retrying -> starting`
  /// for the new `attempt`, so only an AP started by the new STARTUP may join. Only
  /// the boot CPU and a stop move a CPU out of `retrying`: false when a stop claimed it
  /// meanwhile (then it must not be started).
  public func rearm(attempt: UInt32) -> Bool {
    let current = raw.load(ordering: .relaxed)
    if Self.state(of: current) == .stopped { return false }
    precondition(Self.state(of: current) == .retrying, "rearm of a CPU the boot CPU does not own")
    if transition(from: current, to: Self.word(.starting, attempt: attempt)) { return true }
    precondition(state == .stopped, "CPU left 'retrying' while the boot CPU owned it")
    return false
  }

  /// The stopping CPU, for every CPU but itself, before it picks whom to interrupt: a
  /// CPU that is not running kernel code is moved to `stopped`, so that it can never
  /// start (`claimForStart` refuses it) nor finish starting (`join` fails). A CPU online
  /// or dying is left as it is, to be sent the stop. Retries its exchange while the
  /// other side moves the state between its load and its exchange: each side makes
  /// finitely many moves (an AP joins once; a retry re-arms once), so the loop ends.
  /// Sequentially consistent: ordered after the stop's in-progress flag, and against
  /// `join` on the AP (docs/send-stop.md).
  public func claimForStop() -> StopClaim {
    while true {
      let current = raw.load(ordering: .sequentiallyConsistent)
      let claim: StopClaim
      switch Self.state(of: current) {
      case .online, .dying: return .running
      case .stopped: return .notRunning
      case .starting, .retrying: claim = .wasStarting
      case .possible, .failed, .dead: claim = .notRunning
      }
      let exchange = raw.compareExchange(
        expected: current, desired: Self.word(.stopped, attempt: current >> 8), ordering: .sequentiallyConsistent)
      if exchange.exchanged { return claim }
    }
  }

  /// The CPU itself, the last step of its stop before it acknowledges: `stopped` from
  /// whatever state it was in (online or dying when the stop found it; a CPU that
  /// panicked or called the stop may be anything). A store, not an exchange: no other
  /// side moves a running CPU's state. Release: what it did before is visible to
  /// whoever sees it stopped; pairs with `state`'s acquire.
  public func markStopped() {
    let current = raw.load(ordering: .relaxed)
    raw.store(Self.word(.stopped, attempt: current >> 8), ordering: .releasing)
  }

  /// Boot CPU, at its last deadline: `starting -> failed`. False when the AP joined
  /// first (it is online after all).
  public func giveUp() -> Bool {
    let current = raw.load(ordering: .relaxed)
    guard Self.state(of: current) == .starting else { return false }
    return transition(from: current, to: Self.word(.failed, attempt: current >> 8))
  }

  /// The AP started by `attempt`'s STARTUP, its per-CPU set-up complete: `starting ->
  /// online`. Release: that set-up happens before anyone sees the CPU online; pairs with
  /// `state`'s acquire. Sequentially consistent as well: against `claimForStop` (a stop
  /// either claims the CPU first, and the AP parks, or finds it online and stops it).
  public func join(attempt: UInt32) -> JoinOutcome {
    let exchange = raw.compareExchange(
      expected: Self.word(.starting, attempt: attempt), desired: Self.word(.online, attempt: attempt),
      successOrdering: .sequentiallyConsistent, failureOrdering: .sequentiallyConsistent)
    if exchange.exchanged { return .joined }
    let found = Self.state(of: exchange.original)
    let isLaterAttempt = exchange.original >> 8 != attempt
    return found == .retrying || (found == .starting && isLaterAttempt) ? .retryPending : .refused(found)
  }

  /// Relaxed: the transitions themselves publish nothing; the one that does (`join`)
  /// says so. A failed exchange means the other side moved first.
  private func transition(from old: UInt32, to new: UInt32) -> Bool {
    raw.compareExchange(expected: old, desired: new, ordering: .relaxed).exchanged
  }

  private static func word(_ state: CPUState, attempt: UInt32) -> UInt32 {
    attempt << 8 | UInt32(state.rawValue)
  }

  private static func state(of word: UInt32) -> CPUState {
    CPUState(rawValue: UInt8(truncatingIfNeeded: word))!
  }
}
