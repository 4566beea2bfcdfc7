import Synchronization

@_extern(c, "kernel_symbols") private func kernel_symbols() -> UnsafePointer<UInt64>

/// Addresses known only to the linker and the asm files (Boot/cpu.asm,
/// `kernel_symbol_table`); the order here mirrors that table.
enum KernelSymbols {
  private enum Slot: Int {
    case kernelStart, kernelEnd, trampolineStart, trampolineEnd, trampolineLayout
    case interruptStubs, idtStorage, earlyPerCPUForAPs, bootStackTop, apEntry, consoleRing
    case earlyIDTStorage, bootGDT, apFloorEntry, floorCount, floorArrivals
    case textEnd, rodataEnd, bootStackGuard
  }

  private static func address(_ slot: Slot) -> UInt64 { kernel_symbols()[slot.rawValue] }

  /// First byte of the loaded image (1 MiB).
  static var kernelStart: UInt64 { address(.kernelStart) }
  /// First byte after the image, page aligned.
  static var kernelEnd: UInt64 { address(.kernelEnd) }
  /// The AP trampoline's bytes, to be copied below 1 MiB.
  static var trampoline: UnsafeRawBufferPointer {
    let start = address(.trampolineStart)
    return UnsafeRawBufferPointer(
      start: UnsafeRawPointer(bitPattern: UInt(start)),
      count: Int(address(.trampolineEnd) - start))
  }
  /// `trampoline_layout`: the parameter block offsets as the asm sees them.
  static var trampolineLayout: UnsafePointer<UInt64> {
    UnsafePointer(bitPattern: UInt(address(.trampolineLayout)))!
  }
  /// 256 entry-stub addresses, one per vector (Boot/interrupts.asm).
  static var interruptStubs: UnsafePointer<UInt64> {
    UnsafePointer(bitPattern: UInt(address(.interruptStubs)))!
  }
  /// 4 KiB of zeroed, page-aligned storage for the IDT.
  static var idtStorage: UnsafeMutablePointer<UInt64> {
    UnsafeMutablePointer(bitPattern: UInt(address(.idtStorage)))!
  }
  /// 4 KiB of zeroed, page-aligned storage for the IDT starting APs load in the
  /// trampoline, before they have a TSS (its gates use no IST stack).
  static var earlyIDTStorage: UnsafeMutablePointer<UInt64> {
    UnsafeMutablePointer(bitPattern: UInt(address(.earlyIDTStorage)))!
  }
  /// boot.asm's flat GDT (null, code32, data, code64), which each CPU's own GDT copies.
  static var bootGDT: UnsafePointer<UInt64> {
    UnsafePointer(bitPattern: UInt(address(.bootGDT)))!
  }
  /// `ap_floor_entry` (Boot/trampoline.asm): an AP entry that only stamps its arrival,
  /// counts itself in and halts, for the bring-up floor.
  static var apFloorEntry: UInt64 { address(.apFloorEntry) }
  /// The floor's arrival counter, and its TSC stamps indexed by stack ticket.
  static var floorCount: UnsafeMutablePointer<Atomic<UInt64>> {
    UnsafeMutablePointer(bitPattern: UInt(address(.floorCount)))!
  }
  static var floorArrivals: UnsafeMutablePointer<UInt64> {
    UnsafeMutablePointer(bitPattern: UInt(address(.floorArrivals)))!
  }
  /// The per-CPU header APs use before they find their slot (CPU index -1).
  static var earlyPerCPUForAPs: UInt64 { address(.earlyPerCPUForAPs) }
  /// `ap_entry` (APMain.swift), where the trampoline calls into Swift.
  static var apEntry: UInt64 { address(.apEntry) }
  /// 256 KiB of zeroed storage for the log's record ring (Console.swift).
  static var consoleRing: UnsafeMutableRawPointer {
    UnsafeMutableRawPointer(bitPattern: UInt(address(.consoleRing)))!
  }
  /// Top of the boot CPU's 32 KiB boot stack (`BOOT_STACK_SIZE`).
  static var bootStackTop: UInt64 { address(.bootStackTop) }
  /// The page below the boot stack, left unmapped (KernelProtection.swift).
  static var bootStackGuard: UInt64 { address(.bootStackGuard) }
  /// The boot stack's lowest address: it starts right above its guard page
  /// (Boot/boot.asm, `BOOT_STACK_SIZE` in Boot/layout.inc).
  static var bootStackBottom: UInt64 { bootStackGuard + 4096 }
  /// The kernel's code is [kernelStart, textEnd), its read-only data [textEnd,
  /// rodataEnd), and its writable data [rodataEnd, kernelEnd); each bound page aligned
  /// (Linker/kernel.ld).
  static var textEnd: UInt64 { address(.textEnd) }
  static var rodataEnd: UInt64 { address(.rodataEnd) }
}
