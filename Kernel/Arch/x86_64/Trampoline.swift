/// The AP trampoline's placement and parameter block, mirroring Boot/layout.inc.
///
/// Boot/trampoline.asm opens with the whole hand-off; in short, the boot CPU copies the
/// trampoline to `base`, fills `TrampolineParameters` at `parametersAddress`, and names
/// page `base >> 12` in the STARTUP IPI.
enum Trampoline {
  /// Where the code is copied: page aligned, below 1 MiB (the SIPI vector is a page
  /// number, SDM Vol. 3A §11.6.1), and in RAM the memory map calls usable.
  static let base: UInt64 = 0x8000
  /// Where the parameter block lives: the page after the code, never the code's own.
  /// Every AP writes its ticket here; under TCG a store into a page that holds
  /// translated code throws that page's translations away, so with the block beside the
  /// code each AP retranslated the trampoline (64 vCPUs: ~3x slower bring-up).
  static let parametersAddress: UInt64 = 0x9000

  /// Where the second copy lives, for the retry's STARTUP: an AP knows from the page
  /// that started it which attempt it belongs to (see Boot/trampoline.asm).
  static let retryBase: UInt64 = 0xA000

  /// The STARTUP IPI's vector for each attempt: the page number of that copy.
  static var firstStartupPage: UInt8 { UInt8(base >> 12) }
  static var retryStartupPage: UInt8 { UInt8(retryBase >> 12) }
  /// End of the pages the trampoline occupies, for the memory-map check.
  static var end: UInt64 { retryBase + 0x1000 }

  static var parameters: UnsafeMutablePointer<TrampolineParameters> {
    UnsafeMutablePointer(bitPattern: UInt(parametersAddress))!
  }

  /// Copies the code below 1 MiB, twice, and fills the parameter block. Boot CPU,
  /// before the first INIT; the copies are complete before any SIPI names their page.
  static func install(_ parameters: TrampolineParameters) {
    let code = KernelSymbols.trampoline
    precondition(base + UInt64(code.count) <= parametersAddress, "trampoline overlaps its parameters")
    precondition(
      parametersAddress % 4096 == 0 && parametersAddress != base & ~4095, "parameters share the code's page")
    precondition(code.count <= 4096 && retryBase % 4096 == 0, "trampoline copies overlap")
    for copy in [base, retryBase] {
      let destination = UnsafeMutableRawPointer(bitPattern: UInt(copy))!
      destination.copyMemory(from: code.baseAddress!, byteCount: code.count)
    }
    self.parameters.initialize(to: parameters)
  }
}

/// The trampoline's parameter block. Field order and offsets are those of TP_* in
/// Boot/layout.inc; the `boot` suite checks them against `trampoline_layout`.
struct TrampolineParameters {
  /// Page-table root the AP loads before enabling paging.
  var cr3: UInt64
  /// 64-bit entry point, called as apEntry(stackTop, ticket, startupPage).
  var entry: UInt64
  /// Stack pool: `stackCount` stacks of `stackSize` bytes, the first at `stackBase`,
  /// each `stackStride` bytes above the one before (GuardedStacks.allocateRun).
  var stackBase: UInt64
  var stackSize: UInt64
  var stackCount: UInt64
  /// Next ticket; each arriving AP takes one with `lock xadd` and uses that stack.
  var nextTicket: UInt64
  /// GS base until the AP knows its CPU number (a header saying "CPU -1").
  var gsBase: UInt64
  /// The IDT the AP loads before its first Swift instruction (no IST stacks).
  var earlyIDT: UInt64
  var stackStride: UInt64
}
