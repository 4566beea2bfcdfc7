/// W^X for the kernel's own memory: no page is both writable and executable.
///
/// Boot/boot.asm maps the first 4 GiB with 2 MiB pages, all writable and executable.
/// `setUp` (boot CPU, before any AP starts) turns that into
///
///   - kernel text [kernelStart, textEnd): read-only, executable;
///   - read-only data [textEnd, rodataEnd): read-only, no-execute;
///   - data and bss [rodataEnd, kernelEnd): writable, no-execute; the page below the
///     boot stack (`boot_stack_guard`) not mapped at all, as every stack's guard;
///   - everything else (low memory, the heap, free memory, MMIO): writable, no-execute;
///   - the AP trampoline's code page (0x8000): writable and no-execute, except while
///     APs start, when it is read-only and executable (`openTrampoline`).
///
/// The 2 MiB pages that hold the kernel are split into 4 KiB pages for this; the rest
/// stay large with XD set. Stacks (GuardedStacks.swift) and anything mapped later are
/// no-execute (`PageTables.map`). `checkMappings` walks every table after boot and
/// prints `W+X mappings: none` or lists them and panics (Linux: mark_rodata_ro() and
/// the DEBUG_WX walk, ptdump_check_wx()).
enum KernelProtection {
  /// IA32_EFER and its NXE bit (SDM Vol. 4 Table 2-2).
  private static let efer: UInt32 = 0xC000_0080
  private static let noExecuteEnable: UInt64 = 1 << 11

  private static let readOnlyCode = PageTables.Rights(writable: false, executable: true)
  private static let readOnlyData = PageTables.Rights(writable: false, executable: false)
  private static let data = PageTables.Rights(writable: true, executable: false)

  /// Applies the layout above to the running page tables. Boot CPU, once, after the
  /// heap is set up (the split tables come from it) and before any AP starts: present
  /// entries change, and the CR3 reload at the end is the only invalidation.
  static func setUp() {
    guard CPUInstructions.readMSR(efer) & noExecuteEnable != 0 else {
      Panic.halt(
        "W^X: this CPU has no execute-disable bit (CPUID 0x80000001 EDX bit 20), so data cannot be made no-execute; use a QEMU CPU model with nx (qemu64 and host have it)"
      )
    }
    let tables = PageTables.current
    let end = KernelSymbols.kernelEnd
    for large in stride(from: UInt64(0), to: end, by: 1 << 21) {
      guard tables.splitLargePage(containing: large, rights(ofKernelPage:)) else {
        Panic.halt("W^X: cannot split the 2 MiB page at \(hex: large) into 4 KiB pages")
      }
    }
    tables.forbidExecutionOfLargePages()
    CPUInstructions.writeCR3(CPUInstructions.readCR3())
  }

  /// The rights of a 4 KiB page in the 2 MiB pages that hold the kernel; nil for
  /// the boot stack's guard page, which stays unmapped.
  private static func rights(ofKernelPage address: UInt64) -> PageTables.Rights? {
    switch region(of: address) {
    case .text: readOnlyCode
    case .readOnlyData: readOnlyData
    case .bootStackGuard: nil
    default: data
    }
  }

  /// Where an address lies, for the layout above and for a page fault's report.
  enum Region {
    case text, readOnlyData, data, bootStackGuard, trampoline, stacks, identityMap, unmapped

    var name: StaticString {
      switch self {
      case .text: "kernel text"
      case .readOnlyData: "kernel read-only data"
      case .data: "kernel data"
      case .bootStackGuard: "the boot stack's guard page"
      case .trampoline: "the AP trampoline's code page"
      case .stacks: "the guarded stacks' region"
      case .identityMap: "the identity map: heap, firmware or free memory"
      case .unmapped: "no mapping"
      }
    }
  }

  static func region(of address: UInt64) -> Region {
    let guardPage = KernelSymbols.bootStackGuard
    if address >= KernelSymbols.kernelStart && address < KernelSymbols.textEnd { return .text }
    if address >= KernelSymbols.textEnd && address < KernelSymbols.rodataEnd { return .readOnlyData }
    if address >= guardPage && address - guardPage < PageTables.pageBytes { return .bootStackGuard }
    if address >= KernelSymbols.rodataEnd && address < KernelSymbols.kernelEnd { return .data }
    if address >= Trampoline.base && address - Trampoline.base < PageTables.pageBytes { return .trampoline }
    if address >= GuardedStacks.regionBase && address - GuardedStacks.regionBase < GuardedStacks.regionBytes {
      return .stacks
    }
    return address < 1 << 32 ? .identityMap : .unmapped
  }

  /// Makes the trampoline's code page read-only and executable, for APs about to
  /// start: after paging is on they run its 32- and 64-bit part from there (the retry's
  /// copy at 0xA000 runs only in real mode, before paging). The caller has installed
  /// the code (`Trampoline.install` writes while the page is closed). Boot or thread
  /// context; the running CPU's TLB is invalidated, and an AP starts with an empty one
  /// (INIT invalidates the TLBs, SDM Vol. 3A Table 10-1).
  static func openTrampoline() {
    setTrampolineRights(readOnlyCode)
  }

  /// Makes the trampoline's code page writable and no-execute again, once the APs a
  /// start targeted are online or sent INIT (which stops them wherever they were).
  /// Only CPUs that used the page while open can hold its executable translation: the
  /// starter, which this invalidates, and each AP, which invalidates it itself on its
  /// first Swift instruction (`forgetTrampoline`) and never comes back to it.
  static func closeTrampoline() {
    setTrampolineRights(data)
  }

  /// For an AP just out of the trampoline: drops its translation of the code page.
  static func forgetTrampoline() {
    CPUInstructions.invalidatePage(Trampoline.base)
  }

  private static func setTrampolineRights(_ rights: PageTables.Rights) {
    guard PageTables.current.setRights(of: Trampoline.base, rights) else {
      Panic.halt("W^X: the trampoline page \(hex: Trampoline.base) is not mapped by a 4 KiB page")
    }
  }

  /// The boot-time W+X walk: prints `W+X mappings: none`, or each range and a panic.
  /// Boot CPU, after bring-up (the trampoline is closed again).
  static func checkMappings() {
    let found = PageTables.current.forEachWritableExecutableRange { start, end in
      log("W+X mapping: \(hex: start, digits: 16)-\(hex: end, digits: 16) (\((end - start) / 1024) KiB, \(region(of: start).name))")
    }
    guard found == 0 else { Panic.halt("W^X: \(found) W+X mapping(s): writable memory can be executed") }
    let text = (KernelSymbols.textEnd - KernelSymbols.kernelStart) / 1024
    let readOnly = (KernelSymbols.rodataEnd - KernelSymbols.textEnd) / 1024
    let writable = (KernelSymbols.kernelEnd - KernelSymbols.rodataEnd) / 1024
    log("W^X: kernel text \(text) KiB r-x, read-only data \(readOnly) KiB r--, data \(writable) KiB rw-, the rest rw- or unmapped")
    log("W+X mappings: none")
  }
}
