import Synchronization

/// The register frame Boot/interrupts.asm builds, lowest address first.
struct InterruptFrame {
  var r15, r14, r13, r12, r11, r10, r9, r8: UInt64
  var rbp, rdi, rsi, rdx, rcx, rbx, rax: UInt64
  var vector: UInt64
  var errorCode: UInt64
  // Pushed by the CPU (SDM Vol. 3A §6.14.2, Figure 6-9).
  var rip, cs, rflags, rsp, ss: UInt64

  /// All zero: a frame not yet saved.
  static var zero: InterruptFrame {
    InterruptFrame(
      r15: 0, r14: 0, r13: 0, r12: 0, r11: 0, r10: 0, r9: 0, r8: 0, rbp: 0, rdi: 0, rsi: 0, rdx: 0, rcx: 0,
      rbx: 0, rax: 0, vector: 0, errorCode: 0, rip: 0, cs: 0, rflags: 0, rsp: 0, ss: 0)
  }
}

/// Interrupt vectors Lockstep assigns (0-31 are the architecture's exceptions).
extension Vector {
  /// SDM Vol. 3A Table 6-1.
  static let nmi = Vector(2)
  /// The local APIC timer, used one-shot to bound a wait in `hlt`.
  static let timer = Vector(0xEF)
  /// Cross-CPU calls, as Linux numbers them (arch/x86/include/asm/irq_vectors.h): to
  /// many CPUs, to one CPU. Both run the receiving CPU's call queue.
  static let callFunction = Vector(0xFC)
  static let callFunctionSingle = Vector(0xFB)
  /// Wakes a CPU from `hlt` so it looks again at what it waits for (work posted to an
  /// idle CPU; the APs a booting CPU waits for). Linux: RESCHEDULE_VECTOR.
  static let reschedule = Vector(0xFD)
  /// Stops the receiving CPU for good (`smp_send_stop`'s first attempt). Linux:
  /// REBOOT_VECTOR.
  static let stopCPU = Vector(0xF8)
  /// A bare IPI for the benchmark's floor: its handler only answers with one IPI back
  /// (see `IPIPing`), nothing queued. Unused outside `bench`.
  static let ipiPing = Vector(0xF0)
  /// The local APIC's spurious vector; its low 4 bits must be 1111 on old parts
  /// (SDM Vol. 3A §11.9), and it must not be acknowledged with EOI.
  static let spurious = Vector(0xFF)
}

/// Entry from Boot/interrupts.asm for every vector, with interrupts off.
@c(interrupt_dispatch)
func interruptDispatch(_ rawFrame: UnsafeMutableRawPointer) {
  let frame = rawFrame.assumingMemoryBound(to: InterruptFrame.self)
  let vector = Vector(UInt8(truncatingIfNeeded: frame.pointee.vector))
  switch vector {
  case .nmi:
    NMI.handle(frame)
    return  // an NMI may interrupt anything, a context switch included: never preempt
  case _ where vector.isException:
    Panic.exception(frame)
  case .spurious:
    break
  case _ where !PerCPU.currentCPU.isKnown:
    LocalAPIC.endOfInterrupt()  // an AP before its slot: no per-CPU block to count in
  case .reschedule:
    LocalAPIC.endOfInterrupt()
    PerCPU.current.pointee.interruptsTaken.wrappingAdd(1, ordering: .relaxed)
    PerCPU.current.pointee.reschedules.wrappingAdd(1, ordering: .relaxed)
    if Threads.isSetUp && Threads.scheduler.isRunningOnThisCPU { Threads.scheduler.reschedulingInterrupt() }
  case .timer:
    LocalAPIC.endOfInterrupt()
    PerCPU.current.pointee.interruptsTaken.wrappingAdd(1, ordering: .relaxed)
    CPUTimers.handleInterrupt()
  case .ipiPing:
    LocalAPIC.endOfInterrupt()
    IPIPing.handle()
  case .stopCPU:
    LocalAPIC.endOfInterrupt()
    SMPStop.handleStopVector(frame)  // returns only when no stop is in progress
  case .serialInput:
    PerCPU.current.pointee.interruptsTaken.wrappingAdd(1, ordering: .relaxed)
    // The UART first, then EOI: were the line level-triggered (an override may say so),
    // an EOI while it is still asserted would deliver it again at once.
    SerialInput.handleInterrupt()  // the reader sleeping until an interrupt wakes below
    LocalAPIC.endOfInterrupt()
  case .callFunction, .callFunctionSingle:
    // EOI first: a call queued while we run its predecessors raises a new interrupt,
    // which the APIC holds until we return.
    LocalAPIC.endOfInterrupt()
    PerCPU.current.pointee.interruptsTaken.wrappingAdd(1, ordering: .relaxed)
    X86_64Platform.calls.handleInterrupt()
  default:
    LocalAPIC.endOfInterrupt()
    log("irq: unexpected vector \(UInt64(vector.rawValue)) on CPU \(PerCPU.currentCPU)")
  }
  // Threads sleeping until an interrupt on this CPU wake; then the preemption point:
  // returning to a thread that had interrupts on.
  if Threads.isSetUp && Threads.scheduler.isRunningOnThisCPU {
    Threads.scheduler.interruptArrived()
    let interruptsWereOn = frame.pointee.rflags & CPUInstructions.interruptFlag != 0
    Threads.scheduler.preemptOnInterruptExit(interruptedWithInterruptsOn: interruptsWereOn)
  }
}

/// Non-maskable interrupts, on their own stack (IST 1, Descriptors.swift), dispatched
/// by reason, in this order:
/// - **stop / crash stop**: `smp_send_stop`'s later attempts (SMPStop.handleNMI); the
///   CPU stops there and never returns;
/// - **stop wake-up**: the end of a quiet wait in a multi-CPU stop or a rehearsed
///   `smp_send_stop` (`X86_64Platform.endWaitWithInterruptsOff`);
/// - **test**: the `ipi` suite's and the benchmarks' handler, when installed;
/// - **backtrace**: another CPU asked where this one is (`showWhereStuck`);
/// - **watchdog**: the NMI watchdog's tick during a quiet wait (NMIWatchdog.swift);
/// - **unknown**: reported with where it came in.
///
/// The handler never faults and takes no lock: an exception inside it would end with
/// IRET, which re-enables NMIs on this CPU, and a nested NMI would reuse the IST stack
/// under the running handler. It returns only by the IRET of its own entry.
enum NMI {
  /// Test-only: when set, an NMI that is not a stop runs this instead of logging. Set
  /// and cleared by the `ipi` and `sendstop` suites with nothing else sending NMIs;
  /// must not allocate.
  nonisolated(unsafe) static var testOnlyHandler: (@convention(c) () -> Void)? = nil

  /// Handles an NMI. NMI context.
  static func handle(_ frame: UnsafeMutablePointer<InterruptFrame>) {
    // Interrupted inside `stop_wait_nmi` before its HLT ran: check the flag again
    // rather than halt after the NMI that may have been meant to end the wait.
    if X86_64Platform.quietWaitWindow.contains(frame.pointee.rip) {
      frame.pointee.rip = X86_64Platform.quietWaitWindow.lowerBound
    }
    if SMPStop.handleNMI(frame) { return }
    // Acquire pairs with the sender's release: a stop wake-up, expected.
    if PerCPU.currentCPU.isKnown && PerCPU.current.pointee.stopWakeNMIs.load(ordering: .acquiring) > 0 {
      PerCPU.current.pointee.stopWakeNMIs.wrappingAdd(-1, ordering: .relaxed)
      if NMIWatchdog.isAvailable { NMIWatchdog.acknowledge() }  // a tick may have merged with it
      return
    }
    if let handler = testOnlyHandler {
      handler()
      return
    }
    if PerCPU.currentCPU.isKnown {
      let block = PerCPU.current
      // Acquire pairs with the release in `showWhereStuck`.
      if block.pointee.whereaboutsAsked.exchange(false, ordering: .acquiring) {
        let thread = Threads.isSetUp ? Threads.scheduler.run(block.pointee.cpu).pointee.current : nil
        log(
          "nmi: CPU \(block.pointee.cpu) was asked where it is: RIP \(hex: frame.pointee.rip), interrupts \(frame.pointee.rflags & CPUInstructions.interruptFlag != 0 ? "on" : "off"), state \(Int(block.pointee.lifecycle.state.rawValue)), thread \(thread.map { $0.pointee.name } ?? ThreadName("none"))"
        )
        log(
          "nmi: CPU \(block.pointee.cpu) APIC: PPR \(hex: UInt64(LocalAPIC.read(.processorPriority))), ISR 0xE0-0xFF \(hex: UInt64(LocalAPIC.read(.inService7))), IRR 0xE0-0xFF \(hex: UInt64(LocalAPIC.read(.interruptRequest7)))"
        )
      }
      // The watchdog's tick, while this CPU takes it or soon after (1 s: a vCPU may be
      // descheduled between taking the NMI into its pending latch and handling it).
      if NMIWatchdog.isAvailable
        && (block.pointee.watchdogWatching.load(ordering: .relaxed)
          || Clock.ticksToNanoseconds(
            CPUInstructions.readTSC() &- block.pointee.watchdogEnded.load(ordering: .relaxed)) < 1_000_000_000)
      {
        NMIWatchdog.acknowledge()
        return
      }
      // A CPU stopped for good takes no more notice of NMIs.
      if block.pointee.lifecycle.state == .stopped { return }
    }
    log("nmi: CPU \(PerCPU.currentCPU) at RIP \(hex: frame.pointee.rip)")
  }
}

/// The bare IPI round trip that every IPI-based figure is measured against: the pinger
/// sends `Vector.ipiPing`; the target's handler sends one back and does nothing else;
/// the pinger's handler counts the reply.
enum IPIPing {
  /// [0]: the pinging CPU's index, [1]: replies it received. Installed by the benchmark
  /// before its first ping, nil otherwise (a stray ping is then only acknowledged).
  nonisolated(unsafe) static var state: UnsafeMutablePointer<Atomic<Int>>? = nil

  /// The vector's handler, after EOI. Interrupt context; no allocation.
  static func handle() {
    guard let state else { return }
    let pinger = state[0].load(ordering: .relaxed)
    if PerCPU.currentCPU.rawValue == pinger {
      // Release pairs with the acquire in the pinger's wait: a reply counted is a ping
      // that went all the way round.
      state[1].wrappingAdd(1, ordering: .releasing)
    } else {
      IPI.send(Vector.ipiPing, to: CPUIndex(pinger))
    }
  }
}
