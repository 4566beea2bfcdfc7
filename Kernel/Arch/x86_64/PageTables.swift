import Synchronization

/// The running 4-level page tables (SDM Vol. 3A §4.5), as a value over the PML4 that
/// CR3 names, with 4 KiB mappings added and removed one page at a time.
///
/// All CPUs run on one CR3 (Boot/boot.asm's boot_pml4), so one lock serialises every
/// change. Page-table pages live in the identity map of the first 4 GiB (the boot
/// tables in the image, later ones from `KernelHeap`), so a table's physical address
/// is also its virtual address.
///
/// No TLB shootdown is ever needed to add a mapping: `map` only turns entries from not
/// present to present, and "no TLB entry or paging-structure-cache entry is created
/// with information from a paging-structure entry in which the P flag is 0" (SDM
/// Vol. 3A §4.10.4.3), so no CPU can hold a stale translation for it. Removing a
/// mapping is different: any CPU may have cached it, even by speculation (§4.10.2.3),
/// and would need an INVLPG of its own (a shootdown IPI). `unmap` invalidates only the
/// running CPU; callers must keep to addresses no other CPU can have used.
struct PageTables {
  /// The PML4 (SDM Vol. 3A Figure 4-11), reached through the identity map.
  let root: UnsafeMutablePointer<Atomic<UInt64>>

  /// The tables the running CPU uses: CR3 bits 51:12 (SDM Vol. 3A Table 4-12).
  static var current: PageTables {
    let pml4 = CPUInstructions.readCR3() & addressMask
    return PageTables(root: UnsafeMutablePointer(bitPattern: UInt(pml4))!)
  }

  /// P, bit 0: the entry maps a page or references a table (SDM Vol. 3A Tables 4-15
  /// to 4-19).
  static let present: UInt64 = 1 << 0
  /// R/W, bit 1: writes allowed. Access rights are the AND over all levels (SDM Vol.
  /// 3A §4.6.1), so table entries are writable and the leaf decides. NX (bit 63) is
  /// never set: EFER.NXE is off and the bit would then be reserved (§4.5.4).
  static let writable: UInt64 = 1 << 1
  /// PS, bit 7: a PDPTE maps a 1 GiB page, a PDE a 2 MiB page (Tables 4-16, 4-18).
  static let pageSize: UInt64 = 1 << 7
  /// Bits 51:12: the physical address of the next table or of the 4 KiB page.
  static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000
  static let pageBytes: UInt64 = 4096

  /// Serialises changes: every CPU walks the same tables.
  private static let lock = SpinLock<X86_64Platform>("page tables")

  /// Maps the 4 KiB page at `virtual` to `physical`. Allocates missing page-table
  /// pages from `KernelHeap` (zeroed, 4 KiB aligned). Returns false when a table page
  /// cannot be allocated, or `virtual` is already mapped (by a 4 KiB page or by a large
  /// page on the way: changing a present entry would need a shootdown). Thread context,
  /// any CPU, after the heap is set up; takes the page-table lock and allocates.
  func map(virtual: UInt64, physical: UInt64, writable: Bool) -> Bool {
    precondition(virtual % Self.pageBytes == 0 && physical % Self.pageBytes == 0, "unaligned")
    return Self.lock.withLock {
      var table = root
      for level in stride(from: UInt64(39), through: 21, by: -9) {
        guard let next = Self.descend(table, index: Self.index(virtual, shift: level)) else {
          return false
        }
        table = next
      }
      let leaf = table + Int(Self.index(virtual, shift: 12))
      guard leaf.pointee.load(ordering: .relaxed) & Self.present == 0 else { return false }
      let rights = Self.present | (writable ? Self.writable : 0)
      // Relaxed: the page's contents are the caller's to order; no table is linked here.
      leaf.pointee.store(physical | rights, ordering: .relaxed)
      return true
    }
  }

  /// Removes the 4 KiB mapping of `virtual`, if any, and invalidates it on the running
  /// CPU only (INVLPG, SDM Vol. 3A §4.10.4.1). Other CPUs may still translate it: only
  /// for addresses no other CPU can have used (see the type's comment). Table pages
  /// left empty are kept. Thread context, any CPU; takes the page-table lock.
  func unmap(virtual: UInt64) {
    Self.lock.withLock {
      guard let leaf = leafEntry(virtual) else { return }
      leaf.pointee.store(0, ordering: .relaxed)
      CPUInstructions.invalidatePage(virtual)
    }
  }

  /// Whether `address` is mapped, by a 4 KiB page or by a 2 MiB or 1 GiB page. A
  /// lock-free walk: any context, no allocation; a concurrent `map` may or may not be
  /// seen.
  func isMapped(_ address: UInt64) -> Bool {
    var table = root
    for level in stride(from: UInt64(39), through: 12, by: -9) {
      let entry = (table + Int(Self.index(address, shift: level))).pointee.load(ordering: .acquiring)
      // Acquire pairs with the release in descend(): the table it links is zeroed.
      guard entry & Self.present != 0 else { return false }
      if level == 12 || (level != 39 && entry & Self.pageSize != 0) { return true }
      table = UnsafeMutablePointer(bitPattern: UInt(entry & Self.addressMask))!
    }
    return true
  }

  /// The page-table entry that maps `virtual` as a 4 KiB page, or nil if a table on
  /// the way is missing or a large page maps it. Under the lock.
  private func leafEntry(_ virtual: UInt64) -> UnsafeMutablePointer<Atomic<UInt64>>? {
    var table = root
    for level in stride(from: UInt64(39), through: 21, by: -9) {
      let entry = (table + Int(Self.index(virtual, shift: level))).pointee.load(ordering: .relaxed)
      guard entry & Self.present != 0, entry & Self.pageSize == 0 else { return nil }
      table = UnsafeMutablePointer(bitPattern: UInt(entry & Self.addressMask))!
    }
    return table + Int(Self.index(virtual, shift: 12))
  }

  /// The table that entry `index` of `table` references, allocating and linking a
  /// zeroed one if the entry is not present; nil if it maps a large page or no memory
  /// is left. Under the lock.
  private static func descend(
    _ table: UnsafeMutablePointer<Atomic<UInt64>>, index: UInt64
  ) -> UnsafeMutablePointer<Atomic<UInt64>>? {
    let entry = table + Int(index)
    let value = entry.pointee.load(ordering: .relaxed)
    if value & present != 0 {
      guard value & pageSize == 0 else { return nil }
      return UnsafeMutablePointer(bitPattern: UInt(value & addressMask))!
    }
    guard let page = KernelHeap.tryAllocate(bytes: Int(pageBytes), alignment: Int(pageBytes)) else {
      return nil
    }
    page.initializeMemory(as: UInt8.self, repeating: 0, count: Int(pageBytes))
    // Release: the zeroes are visible before the entry that links the table. The
    // partners are every CPU's page walker, which may read it at any time, even
    // speculatively (SDM Vol. 3A §4.10.2.3), and the acquire in isMapped().
    entry.pointee.store(UInt64(UInt(bitPattern: page)) | present | writable, ordering: .releasing)
    return page.assumingMemoryBound(to: Atomic<UInt64>.self)
  }

  /// The 9-bit index that bits `shift + 8 : shift` of `address` give (SDM Vol. 3A
  /// Figure 4-11).
  private static func index(_ address: UInt64, shift: UInt64) -> UInt64 {
    (address >> shift) & 511
  }
}
