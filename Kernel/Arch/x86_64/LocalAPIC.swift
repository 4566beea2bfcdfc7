import _Volatile

/// The running CPU's local APIC, in xAPIC mode (MMIO) or x2APIC mode (MSRs).
///
/// SDM Vol. 3A chapter 11. Every CPU sees its own APIC at the same address, so one
/// global describes all of them; the mode is chosen once by the boot CPU and each AP
/// switches itself to it in `enable()`.
enum LocalAPIC {
  /// Register offsets in the xAPIC page (SDM Vol. 3A Table 11-1). In x2APIC mode the
  /// same register is MSR 0x800 + offset / 16 (Table 11-6).
  enum Register: UInt32 {
    case id = 0x20
    case version = 0x30
    case taskPriority = 0x80
    case processorPriority = 0xA0
    case endOfInterrupt = 0xB0
    /// In-service and request bits of vectors 0xE0-0xFF (the eighth of eight words).
    case inService7 = 0x170
    case interruptRequest7 = 0x270
    case spuriousInterruptVector = 0xF0
    case errorStatus = 0x280
    case interruptCommandLow = 0x300
    case interruptCommandHigh = 0x310
    case lvtTimer = 0x320
    case lvtLINT0 = 0x350
    case lvtLINT1 = 0x360
    case lvtError = 0x370
    case timerInitialCount = 0x380
    case timerCurrentCount = 0x390
    case timerDivideConfiguration = 0x3E0
  }

  enum Mode { case xAPIC, x2APIC }

  /// IA32_APIC_BASE bits (SDM Vol. 3A Figure 11-5).
  private static let baseEnable: UInt64 = 1 << 11
  private static let baseX2APICEnable: UInt64 = 1 << 10
  private static let baseAddressMask: UInt64 = 0xF_FFFF_F000
  /// SVR bit 8: APIC software enable.
  private static let softwareEnable: UInt32 = 1 << 8
  private static let lvtMasked: UInt32 = 1 << 16
  /// A local vector table entry's value: masked.
  static var lvtMaskedValue: UInt32 { lvtMasked }
  /// A LINT entry delivering an NMI, edge-triggered, unmasked (SDM Vol. 3A §11.5.1).
  static let deliveryNMI: UInt32 = 0b100 << 8
  /// How long an xAPIC ICR write may stay "send pending".
  private static let deliveryTimeoutNanoseconds: UInt64 = 10_000_000

  /// Divide configuration 0b0011: the timer counts at the bus clock / 16 (SDM Figure 11-10).
  private static let timerDivideBy16: UInt32 = 0x3
  /// APIC timer ticks per millisecond, measured against the TSC by `calibrateTimer`.
  nonisolated(unsafe) private(set) static var timerTicksPerMillisecond: UInt64 = 0

  nonisolated(unsafe) private(set) static var mode = Mode.xAPIC
  nonisolated(unsafe) private(set) static var baseAddress: UInt64 = 0xFEE0_0000

  /// Chooses the mode from CPUID (x2APIC when leaf 1 ECX bit 21 says so) and records
  /// the MMIO base. Boot CPU, before `enable()` anywhere.
  static func selectMode() {
    let hasX2APIC = CPUInstructions.cpuid(1).ecx & (1 << 21) != 0
    mode = hasX2APIC ? .x2APIC : .xAPIC
    baseAddress = CPUInstructions.readMSR(MSR.apicBase) & baseAddressMask
  }

  /// Puts the running CPU's APIC in the chosen mode and software-enables it with the
  /// spurious vector; masks LINT0 (the 8259 is unused). LINT1 keeps the firmware's NMI
  /// setting. Interrupts off.
  static func enable() {
    var base = CPUInstructions.readMSR(MSR.apicBase) | baseEnable
    if mode == .x2APIC { base |= baseX2APICEnable }
    CPUInstructions.writeMSR(MSR.apicBase, base)
    write(.taskPriority, 0)
    write(.lvtLINT0, lvtMasked)
    write(.spuriousInterruptVector, softwareEnable | UInt32(Vector.spurious.rawValue))
  }

  /// Measures the APIC timer against the calibrated TSC over 1 ms. Boot CPU, after
  /// `enable()` and `Clock.calibrate()`. All APICs share the bus clock, so one figure
  /// serves every CPU.
  static func calibrateTimer() {
    write(.timerDivideConfiguration, timerDivideBy16)
    write(.lvtTimer, lvtMasked | UInt32(Vector.timer.rawValue))
    write(.timerInitialCount, UInt32.max)
    Clock.delay(microseconds: 1000)
    let remaining = read(.timerCurrentCount)
    write(.timerInitialCount, 0)
    timerTicksPerMillisecond = UInt64(UInt32.max - remaining)
    log("apic: timer \(timerTicksPerMillisecond / 1000) MHz after divide-by-16")
  }

  /// Arms the running CPU's timer to raise `Vector.timer` once, `nanoseconds` from now
  /// (at least one tick, at most the 32-bit counter's span). Interrupts off.
  static func startOneShotTimer(nanoseconds: UInt64) {
    let ticks = max(1, min(nanoseconds * timerTicksPerMillisecond / 1_000_000, UInt64(UInt32.max)))
    write(.timerDivideConfiguration, timerDivideBy16)
    write(.lvtTimer, UInt32(Vector.timer.rawValue))  // one-shot mode, unmasked
    write(.timerInitialCount, UInt32(ticks))
  }

  /// Stops the running CPU's timer.
  static func stopTimer() {
    write(.timerInitialCount, 0)
    write(.lvtTimer, lvtMasked | UInt32(Vector.timer.rawValue))
  }

  /// This CPU's APIC ID as the APIC itself reports it (xAPIC: bits 31:24 of the ID
  /// register; x2APIC: the full 32 bits).
  static func currentID() -> APICID {
    let raw = read(.id)
    return APICID(mode == .x2APIC ? raw : raw >> 24)
  }

  /// Signals end of interrupt. Not for the spurious vector.
  static func endOfInterrupt() { write(.endOfInterrupt, 0) }

  static func read(_ register: Register) -> UInt32 {
    switch mode {
    case .xAPIC: return mmio(register).load()
    case .x2APIC: return UInt32(truncatingIfNeeded: CPUInstructions.readMSR(msr(register)))
    }
  }

  static func write(_ register: Register, _ value: UInt32) {
    switch mode {
    case .xAPIC: mmio(register).store(value)
    case .x2APIC: CPUInstructions.writeMSR(msr(register), UInt64(value))
    }
  }

  /// Sends an inter-processor interrupt. In xAPIC mode waits (bounded) for the
  /// previous send to leave the APIC and for this one, and reports a stuck ICR with the
  /// CPU and the target; x2APIC has no delivery status to wait on (SDM §11.12.9).
  /// Returns false if the ICR stayed busy.
  ///
  /// Any context, NMI included: a send that interrupts another send between its two
  /// xAPIC writes leaves that send's destination as it found it (see `sendXAPIC`).
  /// Stores made before the call are visible to the target before the IPI reaches it,
  /// in both modes (see `sendX2APIC`).
  @discardableResult
  static func send(_ command: InterruptCommand) -> Bool {
    switch mode {
    case .x2APIC:
      sendX2APIC(command)
      return true
    case .xAPIC:
      return sendXAPIC(command)
    }
  }

  /// One WRMSR writes the whole ICR, so nothing can come between two halves. But WRMSR
  /// to the x2APIC MSRs is not serialising (SDM Vol. 3A §11.12.3): the IPI may leave
  /// before our earlier stores are globally visible, and the target could then take the
  /// interrupt and find a queue that looks empty or a record not yet filled.
  private static func sendX2APIC(_ command: InterruptCommand) {
    // mfence; lfence (Linux: weak_wrmsr_fence()). The mfence drains our earlier stores;
    // the lfence keeps the WRMSR from starting before the mfence is done. It pairs with
    // what the target reads after the interrupt: the release of CallQueue.push() (read
    // by the acquire in CallQueue.takeAll()), a completion's wake-up of a thread, and,
    // for INIT and STARTUP, the trampoline parameter block and the CPU state the AP
    // reads when it starts (APStartup writes them before it sends).
    CPUInstructions.weakWRMSRFence()
    CPUInstructions.writeMSR(msr(.interruptCommandLow), command.x2APIC)
  }

  /// The xAPIC ICR is two registers; writing the low one sends. With interrupts off no
  /// ordinary interrupt can come between our two writes (Linux: local_irq_save around
  /// the pair), but an NMI can, and so can this send when it runs in that NMI.
  ///
  /// Nesting is made harmless by restoring: we read ICR-high first and write it back
  /// after our own command has left the APIC. The code we interrupted resumes after we
  /// return; if it had written ICR-high and not yet ICR-low, it now finds its own
  /// destination there again, and its ICR-low write goes where it meant. If it was
  /// anywhere else, restoring changes nothing it depends on, since every send writes
  /// ICR-high before ICR-low. Waiting for our delivery before returning also leaves the
  /// ICR idle for the interrupted send. Chosen over a per-CPU "sending" flag, which
  /// would force the NMI to drop or defer its IPI; the extra cost is one MMIO read and
  /// one write. Earlier stores need no fence: the ICR is uncached memory, and x86 keeps
  /// stores in program order, so they are visible before the write that sends.
  private static func sendXAPIC(_ command: InterruptCommand) -> Bool {
    let flags = CPUInstructions.saveAndDisableInterrupts()
    defer { CPUInstructions.restoreInterrupts(flags) }
    let interruptedHigh = read(.interruptCommandHigh)
    guard waitForDelivery(command) else { return false }
    write(.interruptCommandHigh, command.xAPICHigh)
    if let hook = testOnlyBetweenICRWrites { hook() }
    write(.interruptCommandLow, command.xAPICLow)
    let delivered = waitForDelivery(command)
    write(.interruptCommandHigh, interruptedHigh)
    return delivered
  }

  /// Test-only: called by an xAPIC send between its ICR-high and ICR-low writes, with
  /// interrupts off, so that a test can take an NMI exactly there. Nil outside the
  /// `ipi` suite's NMI case; the hook clears it before doing anything that sends.
  nonisolated(unsafe) static var testOnlyBetweenICRWrites: (@convention(c) () -> Void)? = nil

  private static func waitForDelivery(_ command: InterruptCommand) -> Bool {
    let start = Clock.nanoseconds()
    while read(.interruptCommandLow) & InterruptCommand.deliveryStatusBit != 0 {
      let waited = Clock.nanoseconds() &- start
      if waited > deliveryTimeoutNanoseconds {
        log(
          "apic: CPU \(PerCPU.currentCPU): ICR still busy after \(waited / 1000) us sending vector \(UInt32(command.vector)) to APIC \(command.destination.rawValue)"
        )
        return false
      }
      CPUInstructions.pause()
    }
    return true
  }

  private static func mmio(_ register: Register) -> VolatileMappedRegister<UInt32> {
    VolatileMappedRegister<UInt32>(unsafeBitPattern: UInt(baseAddress) + UInt(register.rawValue))
  }

  private static func msr(_ register: Register) -> UInt32 {
    MSR.x2APICBase + register.rawValue >> 4
  }
}
