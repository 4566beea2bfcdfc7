import Synchronization

/// The stop machinery on x86-64: the timeline clock and the active set it needs, and
/// one `migration/N` stopper thread per possible CPU (Kernel/SMP/Stoppers.swift).
extension X86_64Platform: StopPlatform {
  /// The TSC: one instruction, no lock, usable with interrupts off.
  static func timestamp() -> UInt64 { CPUInstructions.readTSC() }

  static func timestampNanoseconds(_ ticks: UInt64) -> UInt64 { Clock.ticksToNanoseconds(ticks) }

  static func isActive(_ cpu: CPUIndex) -> Bool {
    // Acquire pairs with the release in `CPUs.setActive`.
    cpu.rawValue >= 0 && cpu.rawValue < CPUs.possibleCount
      && PerCPU.block(cpu).pointee.active.load(ordering: .acquiring)
  }

  static var activeCPUs: CPUSet { CPUs.active }

  /// Boot/stopwait.asm: halts with interrupts off until the flag is 0; an NMI ends
  /// each halt (`NMI.handle` closes the race between the check and the HLT).
  static func waitWithInterruptsOff(whileNonZero flag: UnsafeRawPointer) {
    guard NMIWatchdog.isAvailable else {
      // KVM: no tick would bound the halt, so every waiter spins, as Linux's do (KVM
      // deschedules a vCPU that spins on PAUSE, so it costs the host little).
      relax()
      return
    }
    let block = PerCPU.current
    block.pointee.watchdogWatching.store(true, ordering: .relaxed)
    NMIWatchdog.beginWatching()
    stop_wait_nmi(flag)
    NMIWatchdog.endWatching()
    block.pointee.watchdogEnded.store(CPUInstructions.readTSC(), ordering: .relaxed)
    block.pointee.watchdogWatching.store(false, ordering: .relaxed)
  }

  /// An NMI that makes `cpu` log where it was interrupted and what it is
  /// (`NMI.handle`), even with interrupts off.
  static func showWhereStuck(_ cpu: CPUIndex) {
    guard cpu.rawValue >= 0 && cpu.rawValue < CPUs.possibleCount else { return }
    // Release pairs with the acquire in `NMI.handle`.
    PerCPU.block(cpu).pointee.whereaboutsAsked.store(true, ordering: .releasing)
    LocalAPIC.send(.nmi(to: CPUs.apicID(of: cpu)))
  }


  /// An NMI: the only interrupt that resumes a HLT with interrupts off. Counted first,
  /// so the target's NMI handler knows it for a wake-up and says nothing.
  static func endWaitWithInterruptsOff(on cpu: CPUIndex) {
    // Release pairs with the acquire in `NMI.handle`.
    PerCPU.block(cpu).pointee.stopWakeNMIs.wrappingAdd(1, ordering: .releasing)
    LocalAPIC.send(.nmi(to: CPUs.apicID(of: cpu)))
  }

  /// Where `stop_wait_nmi` may be interrupted before its HLT has run: an NMI there
  /// must make it check its flag again.
  static var quietWaitWindow: ClosedRange<UInt64> {
    let start = UInt64(UInt(bitPattern: unsafeBitCast(stop_wait_nmi as @convention(c) (UnsafeRawPointer) -> Void, to: UnsafeRawPointer.self)))
    let hlt = UInt64(UInt(bitPattern: unsafeBitCast(stop_wait_nmi_hlt as @convention(c) () -> Void, to: UnsafeRawPointer.self)))
    return start...hlt
  }
}

@_extern(c, "stop_wait_nmi") private func stop_wait_nmi(_ flag: UnsafeRawPointer)
@_extern(c, "stop_wait_nmi_hlt") private func stop_wait_nmi_hlt()

/// Creating the stopper threads and starting them as CPUs come online.
enum StopperThreads {
  nonisolated(unsafe) private static var instance: Stoppers<X86_64Platform>? = nil

  /// The kernel's stoppers. - Precondition: `setUp` has run.
  static var stoppers: Stoppers<X86_64Platform> { instance! }

  /// Whether `setUp` has run.
  static var isSetUp: Bool { instance != nil }

  /// Default bound of one state of a multi-CPU stop before it panics (`stop_timeout_ms=`
  /// overrides); a stall is reported at a tenth of it (at most 1 s) first.
  static let defaultTimeoutMilliseconds = 30_000

  /// Creates a stopper thread for every possible CPU (each stays parked until its CPU
  /// is online) and starts the boot CPU's. Boot CPU, main thread, before the APs start:
  /// from here on `stopMachine` stops CPUs through them. Linux: cpu_stop_init().
  static func setUp(timeoutMilliseconds: Int) {
    let timeout = UInt64(timeoutMilliseconds) * 1_000_000
    let stoppers = Stoppers<X86_64Platform>(
      cpuCount: CPUs.possibleCount, scheduler: Threads.scheduler,
      stallReportNanoseconds: min(timeout / 10, 1_000_000_000), stallPanicNanoseconds: timeout)
    instance = stoppers
    for cpu in CPUs.possible {
      let thread = Threads.create(
        ThreadName("migration", cpu.rawValue), priority: .stopper, on: cpu, function: stopperEntry, argument: nil)
      stoppers.setThread(thread, for: cpu)
    }
    stoppers.start(bootCPU: .boot)
  }

  /// After the boot-time bring-up: every AP that came online becomes active and its
  /// stopper takes work. Linux: the smpboot unpark at CPUHP_AP_ONLINE, then
  /// sched_cpu_activate().
  static func activateSecondaries() {
    let aps = CPUSet(CPUs.online.filter { $0 != .boot })
    for cpu in aps { activate(cpu) }
    // Boot ends with every stopper asleep: the wake-ups' reschedule IPIs have all been
    // taken, so none lands in what runs next (the `ipi` suite counts them).
    let start = Clock.nanoseconds()
    for cpu in aps {
      let thread = stoppers.thread(of: cpu)
      while thread.pointee.state != .sleeping || thread.pointee.isQueued {
        if Clock.nanoseconds() &- start > 5_000_000_000 {
          log("stop: CPU \(cpu)'s stopper did not run within 5 s of being started (state \(Int(thread.pointee.state.rawValue)))")
          break
        }
        CPUInstructions.pause()
      }
    }
  }

  /// `cpu` is online: its stopper takes work, then it is active.
  static func activate(_ cpu: CPUIndex) {
    stoppers.unpark(cpu)
    CPUs.setActive(cpu, true)
  }

  private static let stopperEntry: CallFunction = { _ in stoppers.runStopperThread() }
}
