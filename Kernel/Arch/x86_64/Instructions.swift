/// Single x86-64 instructions, implemented in Boot/cpu.asm and reached through the C ABI.
///
/// These are the only declarations that cross into asm for plain instructions; everything
/// else calls the wrappers in `CPUInstructions`.

@_extern(c, "cpu_inb") private func cpu_inb(_ port: UInt16) -> UInt8
@_extern(c, "cpu_outb") private func cpu_outb(_ port: UInt16, _ value: UInt8)
@_extern(c, "cpu_inl") private func cpu_inl(_ port: UInt16) -> UInt32
@_extern(c, "cpu_rdmsr") private func cpu_rdmsr(_ msr: UInt32) -> UInt64
@_extern(c, "cpu_wrmsr") private func cpu_wrmsr(_ msr: UInt32, _ value: UInt64)
@_extern(c, "cpu_rdtsc") private func cpu_rdtsc() -> UInt64
@_extern(c, "cpu_cpuid") private func cpu_cpuid(
  _ leaf: UInt32, _ subleaf: UInt32, _ out: UnsafeMutablePointer<UInt32>)
@_extern(c, "cpu_disable_interrupts") private func cpu_disable_interrupts()
@_extern(c, "cpu_enable_interrupts") private func cpu_enable_interrupts()
@_extern(c, "cpu_enable_interrupts_and_halt") private func cpu_enable_interrupts_and_halt()
@_extern(c, "cpu_halt") private func cpu_halt()
@_extern(c, "cpu_pause") private func cpu_pause()
@_extern(c, "cpu_weak_wrmsr_fence") private func cpu_weak_wrmsr_fence()
@_extern(c, "cpu_read_flags") private func cpu_read_flags() -> UInt64
@_extern(c, "cpu_write_flags") private func cpu_write_flags(_ flags: UInt64)
@_extern(c, "cpu_read_cr2") private func cpu_read_cr2() -> UInt64
@_extern(c, "cpu_read_cr3") private func cpu_read_cr3() -> UInt64
@_extern(c, "cpu_write_cr3") private func cpu_write_cr3(_ value: UInt64)
@_extern(c, "cpu_read_rsp") private func cpu_read_rsp() -> UInt64
@_extern(c, "cpu_lidt") private func cpu_lidt(_ pointer: UnsafeRawPointer)
@_extern(c, "cpu_ltr") private func cpu_ltr(_ selector: UInt16)
@_extern(c, "cpu_lgdt_reload") private func cpu_lgdt_reload(
  _ pointer: UnsafeRawPointer, _ code: UInt64, _ data: UInt64)
@_extern(c, "percpu_read") private func percpu_read(_ offset: Int) -> UInt64
@_extern(c, "cpu_invalid_opcode") private func cpu_invalid_opcode()
@_extern(c, "cpu_triple_fault") private func cpu_triple_fault()
@_extern(c, "cpu_invlpg") private func cpu_invlpg(_ address: UInt64)
@_extern(c, "call_on_stack") private func call_on_stack(
  _ top: UInt64, _ function: @convention(c) (UnsafeMutableRawPointer?) -> Void,
  _ argument: UnsafeMutableRawPointer?)

/// Thin wrappers over one instruction each. Every function may run in any context
/// (including NMI) unless its comment says otherwise.
enum CPUInstructions {
  static func inb(_ port: UInt16) -> UInt8 { cpu_inb(port) }
  static func outb(_ port: UInt16, _ value: UInt8) { cpu_outb(port, value) }
  static func inl(_ port: UInt16) -> UInt32 { cpu_inl(port) }
  static func readMSR(_ msr: UInt32) -> UInt64 { cpu_rdmsr(msr) }
  static func writeMSR(_ msr: UInt32, _ value: UInt64) { cpu_wrmsr(msr, value) }
  /// The time-stamp counter (SDM Vol. 3B §18.17). Not serialising.
  static func readTSC() -> UInt64 { cpu_rdtsc() }
  static func disableInterrupts() { cpu_disable_interrupts() }
  static func enableInterrupts() { cpu_enable_interrupts() }
  /// `sti; hlt` back to back: an interrupt that is pending when `sti` runs is taken
  /// after `hlt` starts, so a wake-up checked for with interrupts off is never lost.
  static func enableInterruptsAndHalt() { cpu_enable_interrupts_and_halt() }
  static func halt() { cpu_halt() }
  static func pause() { cpu_pause() }
  /// `mfence; lfence`: every earlier load and store is globally visible before a
  /// following WRMSR begins, for the MSRs whose WRMSR is not serialising (x2APIC,
  /// TSC deadline). Linux: weak_wrmsr_fence().
  static func weakWRMSRFence() { cpu_weak_wrmsr_fence() }
  static func readFlags() -> UInt64 { cpu_read_flags() }
  static func writeFlags(_ flags: UInt64) { cpu_write_flags(flags) }
  static func readCR2() -> UInt64 { cpu_read_cr2() }
  static func readCR3() -> UInt64 { cpu_read_cr3() }
  /// Loads CR3, which also invalidates every non-global translation of this CPU (SDM
  /// Vol. 3A §4.10.4.1).
  static func writeCR3(_ value: UInt64) { cpu_write_cr3(value) }
  /// The stack pointer of the calling function.
  static func readStackPointer() -> UInt64 { cpu_read_rsp() }
  static func loadIDT(_ pointer: UnsafeRawPointer) { cpu_lidt(pointer) }
  static func loadTaskRegister(_ selector: UInt16) { cpu_ltr(selector) }
  /// Loads a GDT and reloads CS, DS, ES and SS from it.
  static func loadGDT(_ pointer: UnsafeRawPointer, code: UInt16, data: UInt16) {
    cpu_lgdt_reload(pointer, UInt64(code), UInt64(data))
  }
  /// Reads 8 bytes at `offset` in the current CPU's GS segment (its per-CPU block).
  static func readPerCPU(_ offset: Int) -> UInt64 { percpu_read(offset) }
  static func invalidOpcode() { cpu_invalid_opcode() }
  static func tripleFault() { cpu_triple_fault() }
  /// INVLPG: drops the running CPU's translation of the page holding `address`, and
  /// the paging-structure caches along its walk (SDM Vol. 3A §4.10.4.1). Other CPUs
  /// keep theirs.
  static func invalidatePage(_ address: UInt64) { cpu_invlpg(address) }

  /// Runs `function(argument)` on the stack whose top (exclusive, 16-byte aligned) is
  /// `top`, then returns on the caller's stack. Interrupts stay as they are and arrive
  /// on the new stack while `function` runs, so it must have room for them too. Not
  /// one instruction, but no decision either: a stack switch around a call.
  static func callOnStack(
    top: UInt64, _ function: @convention(c) (UnsafeMutableRawPointer?) -> Void,
    _ argument: UnsafeMutableRawPointer?
  ) {
    precondition(top % 16 == 0, "stack top not 16-byte aligned")
    call_on_stack(top, function, argument)
  }

  /// Executes CPUID and returns EAX, EBX, ECX, EDX.
  static func cpuid(_ leaf: UInt32, _ subleaf: UInt32 = 0)
    -> (eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32)
  {
    var out: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    withUnsafeMutablePointer(to: &out) { tuple in
      tuple.withMemoryRebound(to: UInt32.self, capacity: 4) { cpu_cpuid(leaf, subleaf, $0) }
    }
    return (out.0, out.1, out.2, out.3)
  }

  /// RFLAGS.IF (SDM Vol. 1 §3.4.3).
  static let interruptFlag: UInt64 = 1 << 9

  static var interruptsEnabled: Bool { readFlags() & interruptFlag != 0 }

  /// Disables interrupts and returns the flags to hand back to `restoreInterrupts`.
  static func saveAndDisableInterrupts() -> UInt64 {
    let flags = readFlags()
    disableInterrupts()
    return flags
  }

  /// Restores IF as `saveAndDisableInterrupts` found it.
  static func restoreInterrupts(_ flags: UInt64) {
    if flags & interruptFlag != 0 { enableInterrupts() }
  }
}
