import Synchronization

/// Stopping the other CPUs for good: `smp_send_stop` on shutdown, the crash stop on
/// panic. The retry loop and the claims are portable (Kernel/SMP/SendStop.swift); this
/// file gives them the stop vector, the NMI, the stopped CPU's last steps, and the
/// registers a crash stop saves. docs/send-stop.md has the design and the argument that
/// no CPU escapes.
///
/// A stopped CPU's path is final and takes nothing another CPU may hold: no lock, no
/// allocation, no log line (it may hold the printer role; the console's takeover
/// carries on without it), no waiting call. It saves its registers (crash stop), moves
/// itself to `stopped`, acknowledges, and halts with interrupts off for good.
enum SMPStop {
  nonisolated(unsafe) private static var instance: SendStop<X86_64Platform>? = nil

  /// The stop, once set up (`setUp`, before any AP starts).
  static var shared: SendStop<X86_64Platform>? { instance }

  /// Reads `stop_retries=`, `stop_timeout_us=` and `stop_wait=` and allocates the
  /// per-CPU records. Boot CPU, after `CPUs.setUp`, before any AP starts.
  static func setUp(_ parameters: BootParameters) {
    var forever = false
    let wait = parameters.list("stop_wait")
    if !wait.isEmpty {
      if wait.count == 1 && BootParameters.equals(wait[0], "forever") {
        forever = true
      } else {
        var given: LogLine = "smp: stop_wait="
        for (index, value) in wait.enumerated() {
          if index > 0 { given.append(",") }
          given.append(bytes: value)
        }
        given.append(": the only value is 'forever'; ignored")
        log(given)
      }
    }
    let settings = SendStop<X86_64Platform>.Settings(
      attempts: parameters.integer("stop_retries") ?? 2,
      timeoutNanoseconds: UInt64(parameters.integer("stop_timeout_us") ?? 10_000) * 1000,
      lastAttemptWaitsForever: forever)
    instance = SendStop(cpuCount: CPUs.possibleCount, settings: settings)
  }

  /// Stops every other CPU for good; the running CPU goes on with interrupts off.
  /// Returns what happened, or nil when this CPU's own stop already ran (or nothing is
  /// set up). A caller that loses to another CPU's stop is stopped itself.
  /// Linux: smp_send_stop().
  static func stopOtherCPUs() -> SendStopOutcome? {
    CPUInstructions.disableInterrupts()
    return instance?.stopOthers(.shutdown)
  }

  /// The crash variant: as `stopOtherCPUs`, and every CPU stopped saves the registers
  /// it was interrupted with for `printCrashRegisters`.
  /// Linux: crash_smp_send_stop().
  static func crashStopOtherCPUs() -> SendStopOutcome? {
    CPUInstructions.disableInterrupts()
    // An AP that crashed before it found its per-CPU block knows itself by APIC ID.
    let me = PerCPU.currentCPU.isKnown ? PerCPU.currentCPU : CPUs.cpu(for: InitialAPICID.read()) ?? .unknown
    return instance?.stopOthers(.crash, caller: me)
  }

  // MARK: The stopped CPU

  /// The stop vector's handler (after EOI). Interrupt context.
  static func handleStopVector(_ frame: UnsafeMutablePointer<InterruptFrame>) {
    guard let stop = instance, stop.isInProgress else {
      // Left pending by a benchmark's rehearsal that NMI'd this CPU first.
      if !rehearsed { log("smp: CPU \(PerCPU.currentCPU): stop vector with no stop in progress; ignored") }
      return
    }
    guard stop.enter(PerCPU.currentCPU) else { return }
    if stop.isRehearsal {
      stop.acknowledgeRehearsal(PerCPU.currentCPU, .vector)
      return
    }
    stopHere(.vector, frame: frame)
  }

  /// For an NMI: stops this CPU if the stopping CPU sent it to do so. Returns false if
  /// it was not a stop NMI; true if it was but this CPU is already on its way (the
  /// vector's handler runs, or it has stopped): the NMI then only returns. NMI context.
  static func handleNMI(_ frame: UnsafeMutablePointer<InterruptFrame>) -> Bool {
    guard let stop = instance, PerCPU.currentCPU.isKnown, stop.isRequestedByNMI(PerCPU.currentCPU) else {
      return false
    }
    guard stop.enter(PerCPU.currentCPU) else { return true }
    if stop.isRehearsal {
      stop.acknowledgeRehearsal(PerCPU.currentCPU, .nmi)
      return true
    }
    stopHere(.nmi, frame: frame)
  }

  /// For a CPU that called a stop and lost to another CPU's, or panicked during a crash
  /// stop: stops it, with the registers of `frame` if it has one.
  /// A CPU that panics while another CPU's report is being written waits (at most 5 s)
  /// for that CPU's crash stop to begin, so that its registers are the ones of its own
  /// crash; without a stop, it only parks.
  static func stopThisCPU(_ mechanism: StopMechanism, frame: UnsafeMutablePointer<InterruptFrame>?) -> Never {
    CPUInstructions.disableInterrupts()
    guard let stop = instance, PerCPU.currentCPU.isKnown else { Idle.parkForever() }
    let start = Clock.nanoseconds()
    while !stop.isInProgress && Clock.nanoseconds() &- start < 5_000_000_000 { CPUInstructions.pause() }
    guard stop.enter(PerCPU.currentCPU) else { Idle.parkForever() }
    stopHere(mechanism, frame: frame)
  }

  /// For a starting AP that found a stop before it could go online: acknowledges and
  /// parks, never to run kernel code. It has its slot, nothing else.
  static func parkStartingCPU(_ cpu: CPUIndex) -> Never {
    CPUInstructions.disableInterrupts()
    if let stop = instance, stop.enter(cpu) { stop.acknowledge(cpu, .parkedWhileStarting) }
    Idle.parkForever()
  }

  /// The stopped CPU's last steps; interrupts off. See the type's comment.
  private static func stopHere(_ mechanism: StopMechanism, frame: UnsafeMutablePointer<InterruptFrame>?) -> Never {
    let block = PerCPU.current
    let stop = instance!
    // Its LINT0 may be taking the NMI watchdog's ticks (a quiet wait of a multi-CPU
    // stop): nothing waits for this CPU any more.
    NMIWatchdog.endWatching()
    if stop.reason == .crash, let frame {
      block.pointee.crashFrame = frame.pointee
      block.pointee.hasCrashFrame = true
    }
    if let slow = testOnlySlowStop, slow.cpu == block.pointee.cpu {
      // Until the stopping CPU has given up on the first attempt and sent this CPU its
      // NMI (at most 5 s), then `nanoseconds` more.
      let start = Clock.nanoseconds()
      while !stop.isRequestedByNMI(slow.cpu) && Clock.nanoseconds() &- start < 5_000_000_000 {
        CPUInstructions.pause()
      }
      let more = Clock.nanoseconds()
      while Clock.nanoseconds() &- more < slow.nanoseconds { CPUInstructions.pause() }
      testOnlySlowStopFinished.store(true, ordering: .relaxed)
    }
    block.pointee.lifecycle.markStopped()
    stop.acknowledge(block.pointee.cpu, mechanism)
    Idle.parkForever()
  }

  /// Test only (`sendstop` suite, `late_ack`): this CPU works in its stop path until
  /// the stopping CPU has moved on to its NMI attempt, then this long more, before it
  /// acknowledges; `testOnlySlowStopFinished` is set when it is done.
  nonisolated(unsafe) static var testOnlySlowStop: (cpu: CPUIndex, nanoseconds: UInt64)? = nil
  static let testOnlySlowStopFinished = Atomic<Bool>(false)

  // MARK: Benchmarks

  /// Whether a rehearsal ever ran (a stop vector it left pending is then expected).
  nonisolated(unsafe) private static var rehearsed = false

  /// Benchmark only: `smp_send_stop`'s path up to the acknowledgements, after which the
  /// other CPUs go on (`SendStop.rehearse`). Returns the outcome; interrupts are
  /// restored. Nil if a stop is in progress or nothing is set up.
  static func rehearse() -> SendStopOutcome? {
    guard let stop = instance, !stop.isInProgress else { return nil }
    rehearsed = true
    let state = CPUInstructions.saveAndDisableInterrupts()
    let outcome = stop.rehearse(.shutdown)
    if outcome != nil { stop.endRehearsal() }
    CPUInstructions.restoreInterrupts(state)
    return outcome
  }

  // MARK: The crashing CPU

  /// Prints, for each CPU the crash stop stopped, how and when, and the registers it
  /// saved; then the CPUs it failed to stop. Panic context.
  static func printCrashRegisters(_ outcome: SendStopOutcome) {
    guard let stop = instance else { return }
    // Every CPU that acknowledged: those the stop sent for, and one that panicked
    // meanwhile and stopped itself, perhaps before the stop looked at it.
    for index in 0..<stop.cpuCount where index != outcome.caller.rawValue {
      let cpu = CPUIndex(index)
      let (mechanism, at) = stop.acknowledgement(of: cpu)
      guard mechanism != .none else { continue }
      let after = at > outcome.startNanoseconds ? (at - outcome.startNanoseconds) / 1000 : 0
      let block = PerCPU.block(cpu)
      if mechanism == .lostTheRace {
        log("PANIC: CPU \(cpu) stopped itself after \(after) us: it panicked, or called a stop, while this one ran")
        continue
      }
      guard block.pointee.hasCrashFrame else {
        log("PANIC: CPU \(cpu) stopped (\(mechanism.name)) after \(after) us; no registers (it was not interrupted)")
        continue
      }
      let f = block.pointee.crashFrame
      log("PANIC: CPU \(cpu) stopped by \(mechanism.name) after \(after) us: RIP=\(hex: f.rip, digits: 16) RSP=\(hex: f.rsp, digits: 16) RFLAGS=\(hex: f.rflags)")
      log("PANIC: CPU \(cpu) RAX=\(hex: f.rax, digits: 16) RBX=\(hex: f.rbx, digits: 16) RCX=\(hex: f.rcx, digits: 16) RDX=\(hex: f.rdx, digits: 16)")
      log("PANIC: CPU \(cpu) RSI=\(hex: f.rsi, digits: 16) RDI=\(hex: f.rdi, digits: 16) RBP=\(hex: f.rbp, digits: 16) R8=\(hex: f.r8, digits: 16)")
      log("PANIC: CPU \(cpu) R9=\(hex: f.r9, digits: 16) R10=\(hex: f.r10, digits: 16) R11=\(hex: f.r11, digits: 16) R12=\(hex: f.r12, digits: 16)")
      log("PANIC: CPU \(cpu) R13=\(hex: f.r13, digits: 16) R14=\(hex: f.r14, digits: 16) R15=\(hex: f.r15, digits: 16)")
    }
    if !outcome.failed.isEmpty {
      var line: LogLine = "PANIC: CPUs "
      line.append(cpuList: outcome.failed.lazy.map { $0.rawValue })
      line.append(" did not stop; their registers are unknown")
      log(line)
    }
  }
}

extension X86_64Platform: SendStopPlatform {
  /// The stop vector to every CPU of `cpus` (attempt 1), or an NMI to each (later
  /// attempts). Linux: arch_smp_stop_call(); x86 native_stop_other_cpus().
  static func sendStopRequest(_ mechanism: StopMechanism, to cpus: CPUSet) {
    // Every other CPU: one ICR write with the all-but-self shorthand rather than one
    // per CPU, each a VM exit under KVM (measured at 288 vCPUs, nested: ~190 ms to send
    // 287, against a stop's few ms). An APIC no CPU of ours runs on takes it too and
    // holds it pending with interrupts off, harmless. Never for NMI: that APIC may be
    // waiting for SIPI. Not from an AP that crashed before it had its per-CPU block
    // (its APIC is not set up, and its number is unknown).
    let me = PerCPU.currentCPU
    if mechanism == .vector && me.isKnown && cpus.count == CPUs.possibleCount - 1 && !cpus.contains(me) {
      IPI.sendToAllButSelf(Vector.stopCPU)
      return
    }
    for cpu in cpus {
      if mechanism == .nmi { IPI.sendNMI(to: cpu) } else { IPI.send(Vector.stopCPU, to: cpu) }
    }
  }

  static func lifecycleState(of cpu: CPUIndex) -> CPUState { CPUs.state(of: cpu) }

  static func claimForStop(_ cpu: CPUIndex) -> StopClaim {
    PerCPU.block(cpu).pointee.lifecycle.claimForStop()
  }

  static func stopThisCPU(_ mechanism: StopMechanism) -> Never {
    SMPStop.stopThisCPU(mechanism, frame: nil)
  }
}
