import Synchronization

/// One CPU's private block, reached through GS (IA32_GS_BASE).
///
/// The first three fields are read by offset from asm and `PerCPU.current*` helpers
/// (GS:0 self, GS:8 CPU index, GS:16 APIC ID); `early_percpu_*` in Boot/boot.asm have
/// the same header. The `boot` suite checks the layout on every CPU.
struct PerCPU: ~Copyable {
  /// Address of this block (GS:0).
  let selfAddress: UInt64
  /// Dense CPU number (GS:8, a 64-bit integer; -1 in the early header).
  let cpu: CPUIndex
  /// The local APIC ID the MADT gave for this CPU (GS:16, 32 bits).
  let apicID: APICID
  /// Where the CPU is in its life (Kernel/SMP/CPULifecycle.swift).
  let lifecycle = CPULifecycle()
  /// Whether the CPU takes part in scheduling and multi-CPU stops: set once it is online
  /// and its stopper runs, cleared first when it goes down. Linux: cpu_active_mask.
  /// Written under the hotplug lock; acquire/release with `CPUs.onlineChanges`.
  let active = Atomic<Bool>(false)
  /// NMIs sent to end this CPU's quiet wait in a multi-CPU stop, not yet taken: its
  /// NMI handler takes one for each and stays silent.
  let stopWakeNMIs = Atomic<Int>(0)
  /// Whether this CPU takes the NMI watchdog's tick now, and the TSC when it last
  /// stopped: a tick NMI may still arrive just after (relaxed: this CPU's own).
  let watchdogWatching = Atomic<Bool>(false)
  /// Set by another CPU that wants this one to say where it is (`showWhereStuck`).
  let whereaboutsAsked = Atomic<Bool>(false)
  let watchdogEnded = Atomic<UInt64>(0)
  /// The registers this CPU was interrupted with when a crash stop stopped it, for the
  /// crashing CPU to print (written before its acknowledgement, which publishes them).
  var crashFrame = InterruptFrame.zero
  var hasCrashFrame = false
  /// Reschedule interrupts taken (relaxed: a statistic).
  let reschedules = Atomic<Int>(0)
  /// This CPU's kernel stack, [stackBottom, stackTop).
  var stackBottom: UInt64 = 0
  var stackTop: UInt64 = 0
  /// Two AP stacks for starting this CPU again after hotplug took it down (0 until its
  /// first such start).
  var hotplugStacks: UInt64 = 0
  /// TSC just before the CPU tried to go online (set whether or not it joined).
  var onlineTSC: UInt64 = 0
  /// Times this CPU's AP found it could not join (a retry or a give-up came first),
  /// and parked. Relaxed: a statistic for the log and the `boot` suite.
  let refusedJoins = Atomic<Int>(0)
  /// Descriptor tables owned by this CPU.
  var descriptors = CPUDescriptors()
  /// This CPU's armed timers (CPUTimers); only this CPU touches them, interrupts off.
  var timers = TimerQueue()
  /// The timer bounding this CPU's naps in `waitForInterrupt`; allocated at set-up.
  var napTimer: UnsafeMutablePointer<Timer>? = nil
  /// The idle loop's polling window (Idle.run); this CPU's only.
  var haltPolling = HaltPolling(maximum: 0)
  /// Interrupts taken (vectors from 32 up), and nanoseconds the idle loop polled and
  /// halted. Relaxed: statistics, read by benchmarks.
  let interruptsTaken = Atomic<Int>(0)
  let idlePollNanoseconds = Atomic<UInt64>(0)
  let idleHaltNanoseconds = Atomic<UInt64>(0)

  init(selfAddress: UInt64, cpu: CPUIndex, apicID: APICID) {
    self.selfAddress = selfAddress
    self.cpu = cpu
    self.apicID = apicID
  }
}

extension PerCPU {
  /// Byte offsets of the header fields, as asm reads them.
  static let selfOffset = 0
  static let indexOffset = 8

  /// The blocks of all possible CPUs, indexed by CPU number; nil until `CPUs.setUp`.
  nonisolated(unsafe) static var blocks: UnsafeMutablePointer<PerCPU>? = nil

  /// The running CPU: its number, or `CPUIndex.unknown` on an AP that has not found its
  /// slot yet. Any context: one GS-relative load, no lock, no lazy global.
  static var currentCPU: CPUIndex {
    CPUIndex(Int(truncatingIfNeeded: CPUInstructions.readPerCPU(indexOffset)))
  }

  /// The running CPU's block.
  /// - Precondition: per-CPU blocks are installed on this CPU.
  static var current: UnsafeMutablePointer<PerCPU> {
    UnsafeMutablePointer(bitPattern: UInt(CPUInstructions.readPerCPU(selfOffset)))!
  }

  /// CPU `cpu`'s block.
  static func block(_ cpu: CPUIndex) -> UnsafeMutablePointer<PerCPU> {
    precondition(cpu.rawValue >= 0 && cpu.rawValue < CPUs.possibleCount, "CPU index out of range")
    return blocks! + cpu.rawValue
  }

  /// Points GS at `block` on the running CPU.
  static func install(_ block: UnsafeMutablePointer<PerCPU>) {
    CPUInstructions.writeMSR(MSR.gsBase, UInt64(UInt(bitPattern: block)))
  }
}
