import Synchronization

/// A function a stopper runs for you: a plain C function pointer and an opaque
/// argument, returning 0 for success or a non-zero code of your own.
/// Linux: `cpu_stop_fn_t`.
public typealias StopFunction = @convention(c) (UnsafeMutableRawPointer?) -> Int32

/// Why a stop request did not (all) happen. Each case names the Linux error it stands
/// for; `failed` carries the stop function's own non-zero result.
public enum StopError: Error, Equatable, Sendable {
  /// The CPU number is outside 0..<possible CPUs, or a pair names one CPU twice.
  /// Linux has no check (it indexes out of bounds, or deadlocks on its own lock).
  case invalidCPU(CPUIndex)
  /// The function did not run: the CPU (or every CPU asked) is not online, its stopper
  /// parked. Linux: -ENOENT.
  case notFound
  /// Someone else is stopping CPUs (`tryStopCPUs`). Linux: -EAGAIN.
  case again
  /// Linux: `-EBUSY`. The stop API itself never returns it (neither does Linux's
  /// stop_machine.c); CPU hotplug's refusals stand for it (`HotplugError.lastOnlineCPU`,
  /// `.hasThreads`, in Kernel/Arch/x86_64/Hotplug.swift, with their reasons).
  case busy
  /// Two stoppers would have been queued in opposite orders; `stopTwoCPUs` retries on
  /// it and never returns it, but a statistic counts it. Linux: -EDEADLK.
  case deadlock
  /// The function ran and returned this non-zero code (the first one, when it ran on
  /// several CPUs).
  case failed(Int32)
}

/// The states every CPU of a multi-CPU stop passes through in step. The last CPU to
/// acknowledge a state moves all of them to the next. Linux: enum multi_stop_state.
public enum StopState: UInt8, Sendable, CaseIterable {
  /// Before the stopper looked: the record's initial value.
  case none = 0
  /// Waiting for every CPU's stopper to be running this stop.
  case prepare = 1
  /// Every CPU turns its interrupts off.
  case disableInterrupts = 2
  /// The active CPUs run the function, interrupts off.
  case run = 3
  /// Everyone leaves and puts its interrupts back.
  case exit = 4

  /// The name used in logs and in the trace.
  public var name: StaticString {
    switch self {
    case .none: "NONE"
    case .prepare: "PREPARE"
    case .disableInterrupts: "DISABLE_IRQ"
    case .run: "RUN"
    case .exit: "EXIT"
    }
  }
}

/// When one CPU entered each state of the last multi-CPU stop it took part in, in the
/// platform's timestamp units (`StopPlatform.timestamp`, the TSC on x86-64). Written by
/// that CPU alone while the stop runs; read once the stop has returned.
public struct StopTrace: Sendable {
  /// The stop this record belongs to (`Stoppers.stopsStarted` when it began).
  public var generation: UInt64 = 0
  /// When the caller started the stop (the same for every CPU of one stop).
  public var called: UInt64 = 0
  /// Entry into PREPARE, DISABLE_IRQ, RUN and EXIT, then the time the CPU left.
  public var prepare: UInt64 = 0
  public var disableInterrupts: UInt64 = 0
  public var run: UInt64 = 0
  public var exit: UInt64 = 0
  public var left: UInt64 = 0
  /// Whether this CPU ran the function.
  public var wasActive = false
  /// Whether interrupts were off when this CPU entered RUN.
  public var interruptsOffInRun = false
  /// States this CPU saw change, in order: 4 when none was skipped.
  public var statesSeen: UInt8 = 0

  public init() {}

  /// The entry time of `state` (0 for `.none`).
  public func entered(_ state: StopState) -> UInt64 {
    switch state {
    case .none: 0
    case .prepare: prepare
    case .disableInterrupts: disableInterrupts
    case .run: run
    case .exit: exit
    }
  }

  mutating func record(_ state: StopState, at time: UInt64) {
    switch state {
    case .none: break
    case .prepare: prepare = time
    case .disableInterrupts: disableInterrupts = time
    case .run: run = time
    case .exit: exit = time
    }
  }
}

/// Counters of the stop machinery, for tests and benchmarks. Relaxed: statistics.
public struct StopStatistics: ~Copyable {
  /// `stopTwoCPUs` found `stopCPUs` queueing and retried (Linux: the -EDEADLK path).
  public let deadlockRetries = Atomic<Int>(0)
  /// Works refused because their stopper was disabled (parked or never started).
  public let refusedWorks = Atomic<Int>(0)
  /// Works a stopper ran.
  public let worksRun = Atomic<Int>(0)
  /// Stop functions that returned with the preemption count changed.
  public let leakedPreemption = Atomic<Int>(0)
  /// Multi-CPU stops that waited past the report bound in some state.
  public let stalls = Atomic<Int>(0)

  init() {}
}
