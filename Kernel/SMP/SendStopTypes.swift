import Synchronization

// The values `SendStop` (SendStop.swift) works with: why and how a CPU is stopped, what
// the stop needs from the platform, each CPU's record, and what a stop did.

/// Why the other CPUs are being stopped for good.
public enum SendStopReason: UInt8, Sendable {
  /// Shutdown or halt.
  /// Linux: smp_send_stop().
  case shutdown = 1
  /// A panic: each stopped CPU also saves its registers for the crashing CPU to print.
  /// Linux: crash_smp_send_stop().
  case crash = 2
}

/// How a CPU came to be stopped, as its acknowledgement says.
public enum StopMechanism: UInt8, Sendable {
  /// Not acknowledged (yet).
  case none = 0
  /// The stop vector's handler: an ordinary interrupt, taken with interrupts on.
  case vector = 1
  /// A non-maskable interrupt: the CPU had interrupts off through the first attempt.
  case nmi = 2
  /// A starting AP that found the stop before it could go online, and parked.
  case parkedWhileStarting = 3
  /// It called the stop itself and another CPU's call came first.
  case lostTheRace = 4

  /// The mechanism attempt `attempt` (1-based) uses: the stop vector first, then NMI,
  /// which reaches a CPU that has interrupts off. Linux x86: REBOOT_VECTOR, then
  /// NMI_VECTOR (arch/x86/kernel/smp.c, native_stop_other_cpus).
  public static func forAttempt(_ attempt: Int) -> StopMechanism {
    attempt <= 1 ? .vector : .nmi
  }

  /// "IPI", "NMI", "parked", "caller", or "-".
  public var name: StaticString {
    switch self {
    case .none: "-"
    case .vector: "IPI"
    case .nmi: "NMI"
    case .parkedWhileStarting: "parked"
    case .lostTheRace: "caller"
    }
  }
}

/// What the stop needs from the machine besides `SMPPlatform`: the lifecycle states,
/// the means to interrupt a CPU, and the stopped CPU's own path.
public protocol SendStopPlatform: SMPPlatform {
  /// Interrupts `cpus` with `mechanism` (`.vector` or `.nmi`); every CPU in `cpus` has
  /// finished starting (it was online or dying when the stop claimed it). Any context.
  /// Linux: arch_smp_stop_call(mask, attempt) / arch_smp_crash_call().
  static func sendStopRequest(_ mechanism: StopMechanism, to cpus: CPUSet)
  /// CPU `cpu`'s lifecycle state now (acquire).
  static func lifecycleState(of cpu: CPUIndex) -> CPUState
  /// `CPULifecycle.claimForStop()` on CPU `cpu`.
  static func claimForStop(_ cpu: CPUIndex) -> StopClaim
  /// The running CPU stops itself for good, acknowledging with `mechanism`: a caller
  /// that lost the race to another. Never returns.
  static func stopThisCPU(_ mechanism: StopMechanism) -> Never
  /// Benchmarks only (a rehearsal's stopped CPU until the rehearsal ends): waits,
  /// interrupts off, while the byte at `flag` is not 0, giving the host core away if the
  /// platform can; returns within a bound even if nobody ends it. As
  /// `StopPlatform.waitWithInterruptsOff(whileNonZero:)`.
  static func waitWithInterruptsOff(whileNonZero flag: UnsafeRawPointer)
  /// Ends `cpu`'s `waitWithInterruptsOff`, whose flag the caller has just cleared.
  static func endWaitWithInterruptsOff(on cpu: CPUIndex)
}

extension SendStopPlatform {
  /// A platform that cannot sleep with interrupts off spins.
  public static func waitWithInterruptsOff(whileNonZero flag: UnsafeRawPointer) { relax() }
  /// Nothing to end: the waiter spins.
  public static func endWaitWithInterruptsOff(on cpu: CPUIndex) {}
}

/// One CPU's part in the stop: its acknowledgement and what the stopping CPU did to it.
/// Per CPU, on the heap, allocated at set-up: nothing here allocates later.
struct SendStopRecord: ~Copyable {
  /// The CPU's acknowledgement once its last side effect is done: `generation << 8 |
  /// StopMechanism`, so that one meant for an earlier rehearsal never counts for a later
  /// stop. Release by the CPU, acquire by the stopping CPU.
  let acknowledgement = Atomic<UInt32>(0)
  /// Nanoseconds (platform clock) of the acknowledgement; written before it.
  let acknowledgedAt = Atomic<UInt64>(0)
  /// The generation + 1 of the stop whose path this CPU has entered (0: none): an NMI
  /// arriving meanwhile (the stop's second attempt, sent while the vector's handler
  /// still works) leaves it alone.
  let entered = Atomic<UInt32>(0)
  /// A CPU found dead (it went down on its own) that the stop then claimed.
  let claimedDead = Atomic<Bool>(false)
  /// The stopping CPU sent this CPU the stop as an NMI (set before the NMI): the NMI
  /// handler's reason to stop.
  let nmiRequested = Atomic<Bool>(false)
  /// The CPU may be running start-up code: a STARTUP went to it since its last INIT.
  /// Written by the CPU that starts it (true before each STARTUP, false before an INIT).
  let mayRunStartupCode = Atomic<Bool>(false)
}

/// What one stop did, for its caller, the tests and the benchmarks.
public struct SendStopOutcome: Sendable {
  /// The stopping CPU.
  public var caller = CPUIndex.unknown
  public var reason = SendStopReason.shutdown
  /// Platform nanoseconds at the start (after the claim) and at the end of the wait.
  public var startNanoseconds: UInt64 = 0
  public var endNanoseconds: UInt64 = 0
  /// Attempts made (0: nothing to stop).
  public var attempts = 0
  /// CPUs that were online or dying: sent the stop.
  public var running = CPUSet()
  /// CPUs that were starting: claimed, and waited for if a STARTUP reached them.
  public var starting = CPUSet()
  /// CPUs sent an NMI (the second and later attempts).
  public var sentNMI = CPUSet()
  /// CPUs neither acknowledged nor otherwise known stopped when the last attempt ended.
  public var failed = CPUSet()

  public init() {}

  /// Nanoseconds from the claim to the end of the wait.
  public var nanoseconds: UInt64 { endNanoseconds &- startNanoseconds }
}
