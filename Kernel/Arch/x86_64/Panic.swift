import Synchronization

/// The panic report: what a kernel engineer needs to find a crash from the serial log
/// alone. Printed once (the first CPU to panic wins; a CPU panicking after it is
/// stopped as the crash stop stops the others), then the crash stop stops every other
/// CPU and the report gives their registers, then QEMU exits with status 37 through
/// isa-debug-exit.
enum Panic {
  /// 0 while no CPU has panicked; then the reporter's `Reporter.id`.
  private static let owner = Atomic<UInt64>(0)
  /// Faults taken by the reporting CPU inside its own report: the first re-entry leaves
  /// the machine at once without flushing, a later one only halts.
  private static let reentries = Atomic<Int>(0)

  /// Who is panicking: a CPU number, or, for an AP that has not found its slot yet,
  /// the APIC ID CPUID gives (never "CPU 0": two such APs must not look alike).
  private struct Reporter {
    let index: Int
    let apicID: APICID

    static var current: Reporter {
      Reporter(index: PerCPU.currentCPU.rawValue, apicID: InitialAPICID.read())
    }

    /// Non-zero and distinct per CPU: index + 1 for a known CPU, bit 63 plus the APIC
    /// ID for an unknown one.
    var id: UInt64 { index >= 0 ? UInt64(index) + 1 : 1 << 63 | UInt64(apicID.rawValue) }

    /// "CPU 3", or "unknown CPU (APIC 7)".
    var name: LogLine {
      index >= 0 ? "CPU \(index)" : "unknown CPU (APIC \(apicID.rawValue))"
    }
  }

  /// Exception names, SDM Vol. 3A Table 6-1.
  private static func name(_ vector: UInt64) -> StaticString {
    switch vector {
    case 0: "#DE divide error"
    case 1: "#DB debug"
    case 2: "NMI"
    case 3: "#BP breakpoint"
    case 4: "#OF overflow"
    case 5: "#BR bound range exceeded"
    case 6: "#UD invalid opcode (a Swift runtime trap is ud2)"
    case 7: "#NM device not available"
    case 8: "#DF double fault"
    case 10: "#TS invalid TSS"
    case 11: "#NP segment not present"
    case 12: "#SS stack-segment fault"
    case 13: "#GP general protection"
    case 14: "#PF page fault"
    case 16: "#MF x87 floating-point error"
    case 17: "#AC alignment check"
    case 18: "#MC machine check"
    case 19: "#XM SIMD floating-point exception"
    case 20: "#VE virtualization exception"
    case 21: "#CP control protection"
    default: "reserved"
    }
  }

  /// Reports an exception taken by the running CPU and ends the machine.
  /// Exception context, interrupts off.
  static func exception(_ frame: UnsafeMutablePointer<InterruptFrame>) -> Never {
    // First, before anything that could fault and overwrite it.
    let cr2 = CPUInstructions.readCR2()
    let reporter = enter(frame)
    let f = frame.pointee
    log("PANIC: \(line: reporter.name): exception \(f.vector) (\(name(f.vector))) error \(hex: f.errorCode)")
    reportPageFault(vector: f.vector, errorCode: f.errorCode, cr2: cr2)
    log("PANIC: RIP=\(hex: f.rip, digits: 16) CS=\(hex: f.cs) RFLAGS=\(hex: f.rflags)")
    log("PANIC: RSP=\(hex: f.rsp, digits: 16) SS=\(hex: f.ss) CR2=\(hex: cr2, digits: 16)")
    log("PANIC: RAX=\(hex: f.rax, digits: 16) RBX=\(hex: f.rbx, digits: 16) RCX=\(hex: f.rcx, digits: 16)")
    log("PANIC: RDX=\(hex: f.rdx, digits: 16) RSI=\(hex: f.rsi, digits: 16) RDI=\(hex: f.rdi, digits: 16)")
    log("PANIC: RBP=\(hex: f.rbp, digits: 16) R8=\(hex: f.r8, digits: 16) R9=\(hex: f.r9, digits: 16)")
    log("PANIC: R10=\(hex: f.r10, digits: 16) R11=\(hex: f.r11, digits: 16) R12=\(hex: f.r12, digits: 16)")
    log("PANIC: R13=\(hex: f.r13, digits: 16) R14=\(hex: f.r14, digits: 16) R15=\(hex: f.r15, digits: 16)")
    finish()
  }

  /// For a page fault, what the access was and where (the error code, SDM Vol. 3A
  /// §4.7); in a stack's guard page, whose stack overflowed, and the CPU whose own
  /// stack it is, if any. No lock, no allocation: all is read as the fault handler may.
  private static func reportPageFault(vector: UInt64, errorCode: UInt64, cr2: UInt64) {
    guard vector == 14 else { return }
    let present = errorCode & 1 != 0
    let access: StaticString =
      if errorCode & 8 != 0 { "a reserved bit set in a page-table entry, on access to" }
      else if errorCode & 16 != 0 { present ? "instruction fetch from a no-execute page at" : "instruction fetch from an unmapped page at" }
      else if errorCode & 2 != 0 { present ? "write to a read-only page at" : "write to an unmapped page at" }
      else { present ? "read from a protected page at" : "read from an unmapped page at" }
    log("PANIC: page fault: \(access) \(hex: cr2, digits: 16) (\(KernelProtection.region(of: cr2).name))")
    guard let stack = GuardedStacks.guardOwner(of: cr2) else { return }
    if let cpu = cpuOwningStack(above: cr2 & ~4095) {
      log(
        "PANIC: stack overflow of \(stack.owner)/\(stack.number), CPU \(cpu)'s own stack (guard page hit at CR2=\(hex: cr2, digits: 16))"
      )
    } else {
      log("PANIC: stack overflow of \(stack.owner)/\(stack.number) (guard page hit at CR2=\(hex: cr2, digits: 16))")
    }
  }

  /// The CPU whose own stack (`PerCPU.stackBottom`: the boot stack, or the AP stack it
  /// started on) begins just above the guard page at `guardPage`.
  private static func cpuOwningStack(above guardPage: UInt64) -> Int? {
    for index in 0..<CPUs.possibleCount where PerCPU.block(CPUIndex(index)).pointee.stackBottom == guardPage + 4096 {
      return index
    }
    return nil
  }

  /// Reports a kernel-detected fatal condition and ends the machine. Any context.
  static func halt(_ message: LogLine) -> Never {
    let reporter = enter(nil)
    log("PANIC: \(line: reporter.name): \(line: message)")
    log("PANIC: RSP=\(hex: CPUInstructions.readStackPointer(), digits: 16)")
    finish()
  }

  /// Claims the report. A second CPU panicking meanwhile is stopped as the crash stop
  /// stops the others (with the registers of `frame`, for the first CPU's report); it
  /// says nothing. The reporting CPU faulting inside its own report leaves the machine
  /// at once, without the flush that may have faulted; faulting even there, it halts:
  /// no re-entry is unbounded.
  private static func enter(_ frame: UnsafeMutablePointer<InterruptFrame>?) -> Reporter {
    CPUInstructions.disableInterrupts()
    let reporter = Reporter.current
    // Relaxed: the claim orders nothing; the report itself goes through the console.
    let claim = owner.compareExchange(expected: 0, desired: reporter.id, ordering: .relaxed)
    if claim.exchanged {
      Console.markUrgent()
      return reporter
    }
    if claim.original == reporter.id {
      if reentries.wrappingAdd(1, ordering: .relaxed).oldValue == 0 { DebugExit.exitWithoutFlush(.panicked) }
      Idle.parkForever()
    }
    SMPStop.stopThisCPU(.lostTheRace, frame: frame)
  }

  /// Stops the other CPUs with the crash stop, prints their registers, and ends the
  /// machine. A CPU whose own stop already ran (a panic after `smp_send_stop`) skips
  /// the stop; one that loses to another CPU's stop is stopped there.
  private static func finish() -> Never {
    if let outcome = SMPStop.crashStopOtherCPUs() {
      log(
        "PANIC: crash stop: \(outcome.running.count + outcome.starting.count) other CPU(s) in \(outcome.nanoseconds / 1000) us, \(outcome.attempts) attempt(s), \(outcome.sentNMI.count) sent NMI, \(outcome.failed.count) not stopped"
      )
      SMPStop.printCrashRegisters(outcome)
    }
    log("PANIC: end of report")
    DebugExit.exit(.panicked)
  }
}
