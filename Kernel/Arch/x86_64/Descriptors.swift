/// Segment descriptors, the task-state segment and the interrupt descriptor table.
///
/// Long mode ignores segment bases and limits for code and data, but still needs a GDT
/// for CS, a TSS for the interrupt stack table (IST), and an IDT. Each CPU owns its GDT
/// and TSS (a TSS descriptor is marked busy once loaded, so CPUs cannot share one); all
/// CPUs share one IDT.
struct CPUDescriptors {
  /// Selectors, matching boot_gdt in Boot/boot.asm (Boot/layout.inc).
  static let codeSelector: UInt16 = 0x18
  static let dataSelector: UInt16 = 0x10
  static let tssSelector: UInt16 = 0x20

  /// IST slots (1-based, as the IDT gate names them) and the vectors using them: NMI,
  /// double fault, machine check and page fault each get a known-good stack (SDM Vol.
  /// 3A §6.14.5). The page fault's is for a guarded stack's overflow: the fault comes
  /// with RSP in the guard page, where the CPU could not push its frame (#DF, and with
  /// no stack for that either, a triple fault). A #PF inside a #PF handler starts the
  /// same stack again from its top: tolerable while every #PF ends in a panic report.
  static let nmiStack = 1
  static let doubleFaultStack = 2
  static let machineCheckStack = 3
  static let pageFaultStack = 4
  /// How many IST slots are in use, 1...istCount.
  static let istCount = 4
  /// 16 KiB: a page fault's or double fault's handler writes the whole panic report
  /// and runs the crash stop on its IST stack, which took more than 8 KiB (the guard
  /// pages showed it: before them, such an overflow ran silently into the next CPU's
  /// stacks).
  static let istStackSize = 16384

  /// null, code32, data, code64, TSS (two slots).
  var gdt = InlineArray<6, UInt64>(repeating: 0)
  /// 104-byte 64-bit TSS (SDM Vol. 3A Figure 8-11), stored as 13 quadwords.
  var tss = InlineArray<13, UInt64>(repeating: 0)
  /// GDTR image: 16-bit limit then 64-bit base (2 quadwords, 10 bytes used).
  var gdtr = InlineArray<2, UInt64>(repeating: 0)
  /// Tops of the NMI, double-fault, machine-check and page-fault stacks (IST 1-4).
  var istTops = InlineArray<4, UInt64>(repeating: 0)

  /// Allocates the IST stacks of CPUs 0..<count, each with a guard page
  /// (GuardedStacks.swift): an NMI handler that overflows faults in its guard page, and
  /// the page fault's own stack reports it. One run per IST slot, numbered by CPU.
  /// Boot CPU, at set-up: an AP must not allocate while it starts (63 APs contending for
  /// the heap lock on two host cores cost milliseconds). Returns each CPU's tops
  /// through `store(cpu, slot, top)`.
  static func allocateInterruptStacks(count: Int, _ store: (Int, Int, UInt64) -> Void) {
    for slot in 0..<istCount {
      guard let run = GuardedStacks.allocateRun(count: count, pages: istStackSize / 4096, owner: stackName(slot + 1))
      else { Panic.halt("no memory for \(count) CPUs' interrupt stacks") }
      for cpu in 0..<count { store(cpu, slot, run.bottom + UInt64(cpu) * run.stride + UInt64(istStackSize)) }
    }
  }

  /// The name a guard page's fault report gives IST stack `slot`.
  static func stackName(_ slot: Int) -> StaticString {
    switch slot {
    case nmiStack: "nmi-stack"
    case doubleFaultStack: "double-fault-stack"
    case machineCheckStack: "machine-check-stack"
    default: "page-fault-stack"
    }
  }
}

extension PerCPU {
  /// Builds this CPU's GDT and TSS, loads them, and loads the shared IDT.
  /// Runs on the CPU that owns `block`, interrupts off, after `allocateInterruptStacks`.
  static func loadDescriptors(_ block: UnsafeMutablePointer<PerCPU>) {
    let tables = address(of: &block.pointee.descriptors, in: block)
    let descriptors = tables.assumingMemoryBound(to: CPUDescriptors.self)
    let gdt = address(of: &descriptors.pointee.gdt, in: block)
    let tss = address(of: &descriptors.pointee.tss, in: block)
    let gdtr = address(of: &descriptors.pointee.gdtr, in: block)
    fillGDT(gdt, tssAddress: UInt64(UInt(bitPattern: tss)))
    fillTSS(tss, istTops: descriptors.pointee.istTops)
    gdtr.storeBytes(of: UInt16(6 * 8 - 1), as: UInt16.self)
    gdtr.storeBytes(of: UInt64(UInt(bitPattern: gdt)), toByteOffset: 2, as: UInt64.self)
    CPUInstructions.loadGDT(
      gdtr, code: CPUDescriptors.codeSelector, data: CPUDescriptors.dataSelector)
    CPUInstructions.loadTaskRegister(CPUDescriptors.tssSelector)
    InterruptTable.load()
  }

  /// The address of a field of `block`, checked to be the block's own storage and not a
  /// temporary copy: the CPU keeps using these tables after this returns.
  private static func address<T>(
    of field: inout T, in block: UnsafeMutablePointer<PerCPU>
  ) -> UnsafeMutableRawPointer {
    let raw = withUnsafeMutablePointer(to: &field) { UnsafeMutableRawPointer($0) }
    let start = UnsafeMutableRawPointer(block)
    precondition(raw >= start && raw < start + MemoryLayout<PerCPU>.size, "descriptor copy")
    return raw
  }

  private static func fillGDT(_ gdt: UnsafeMutableRawPointer, tssAddress: UInt64) {
    // The flat segments are boot.asm's boot_gdt, copied: null, code32, data, code64.
    for entry in 0..<4 {
      gdt.storeBytes(of: KernelSymbols.bootGDT[entry], toByteOffset: entry * 8, as: UInt64.self)
    }
    // 64-bit TSS descriptor (SDM Vol. 3A Figure 8-4): type 0x9 "available 64-bit TSS",
    // present, limit 103.
    let limit: UInt64 = 104 - 1
    var low = limit & 0xFFFF
    low |= (tssAddress & 0xFF_FFFF) << 16
    low |= 0x89 << 40
    low |= ((limit >> 16) & 0xF) << 48
    low |= ((tssAddress >> 24) & 0xFF) << 56
    gdt.storeBytes(of: low, toByteOffset: 4 * 8, as: UInt64.self)
    gdt.storeBytes(of: tssAddress >> 32, toByteOffset: 5 * 8, as: UInt64.self)
  }

  private static func fillTSS(_ tss: UnsafeMutableRawPointer, istTops: InlineArray<4, UInt64>) {
    tss.initializeMemory(as: UInt8.self, repeating: 0, count: 104)
    for slot in 0..<CPUDescriptors.istCount {
      // IST n lives at offset 0x24 + 8 * (n - 1) (SDM Vol. 3A Figure 8-11: IST1 at
      // 0x24, IST4 at 0x3C, IST7 at 0x54); these fields are not 8-byte aligned.
      tss.storeBytes(of: istTops[slot], toByteOffset: 0x24 + 8 * slot, as: UInt64.self)
    }
    // I/O map base beyond the limit: no I/O permission bitmap.
    tss.storeBytes(of: UInt16(104), toByteOffset: 0x66, as: UInt16.self)
  }
}

/// The IDT shared by all CPUs: 256 interrupt gates into Boot/interrupts.asm.
enum InterruptTable {
  /// Fills the IDT, and the early IDT starting APs load in the trampoline, from the asm
  /// stub table. Boot CPU, once, before any interrupt.
  static func build() {
    let stubs = KernelSymbols.interruptStubs
    for vector in 0..<256 {
      let ist = istSlot(for: vector)
      write(gate(stubs[vector], ist: ist), to: KernelSymbols.idtStorage, vector: vector)
      // No IST before the AP's own TSS is loaded: after INIT the task register points
      // at address 0 (SDM Vol. 3A Table 10-1), so an IST slot would be garbage.
      write(gate(stubs[vector], ist: 0), to: KernelSymbols.earlyIDTStorage, vector: vector)
    }
  }

  /// NMI, double fault, machine check and page fault get a known-good stack (SDM Vol.
  /// 3A §6.14.5; see `CPUDescriptors.pageFaultStack`).
  private static func istSlot(for vector: Int) -> Int {
    switch vector {
    case 2: CPUDescriptors.nmiStack
    case 8: CPUDescriptors.doubleFaultStack
    case 14: CPUDescriptors.pageFaultStack
    case 18: CPUDescriptors.machineCheckStack
    default: 0
    }
  }

  /// A 64-bit interrupt gate (SDM Vol. 3A Figure 6-8): type 0xE, present, DPL 0.
  private static func gate(_ handler: UInt64, ist: Int) -> (low: UInt64, high: UInt64) {
    var low = handler & 0xFFFF
    low |= UInt64(CPUDescriptors.codeSelector) << 16
    low |= UInt64(ist) << 32
    low |= 0x8E << 40
    low |= ((handler >> 16) & 0xFFFF) << 48
    return (low, handler >> 32)
  }

  private static func write(
    _ gate: (low: UInt64, high: UInt64), to table: UnsafeMutablePointer<UInt64>, vector: Int
  ) {
    table[vector * 2] = gate.low
    table[vector * 2 + 1] = gate.high
  }

  /// Loads the IDT on the running CPU.
  static func load() {
    var idtr = InlineArray<2, UInt64>(repeating: 0)
    withUnsafeMutablePointer(to: &idtr) { pointer in
      let raw = UnsafeMutableRawPointer(pointer)
      raw.storeBytes(of: UInt16(256 * 16 - 1), as: UInt16.self)
      raw.storeBytes(
        of: UInt64(UInt(bitPattern: KernelSymbols.idtStorage)), toByteOffset: 2,
        as: UInt64.self)
      CPUInstructions.loadIDT(raw)
    }
  }
}
