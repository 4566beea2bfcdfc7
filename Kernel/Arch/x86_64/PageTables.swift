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
  /// 3A §4.6.1), so table entries are writable and the leaf decides.
  static let writable: UInt64 = 1 << 1
  /// XD, bit 63: no instruction fetch through this entry, at any level below it (SDM
  /// Vol. 3A §4.6.1; meaningful with EFER.NXE on, which Boot/layout.inc's
  /// ENABLE_LONG_MODE sets on every CPU, else reserved). Table entries leave it clear
  /// and the leaf decides, as for R/W.
  static let noExecute: UInt64 = 1 << 63
  /// PWT and PCD, bits 3 and 4: the caching of what the entry maps (§4.9.2).
  static let cacheBits: UInt64 = 3 << 3
  /// PS, bit 7: a PDPTE maps a 1 GiB page, a PDE a 2 MiB page (Tables 4-16, 4-18).
  static let pageSize: UInt64 = 1 << 7
  /// Bits 51:12: the physical address of the next table or of the 4 KiB page.
  static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000
  static let pageBytes: UInt64 = 4096

  /// Serialises changes: every CPU walks the same tables.
  private static let lock = SpinLock<X86_64Platform>("page tables")

  /// Maps the 4 KiB page at `virtual` to `physical`, never executable (W^X: nothing the
  /// kernel maps after boot is code). Allocates missing page-table
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
      let rights = Self.present | Self.noExecute | (writable ? Self.writable : 0)
      // Relaxed: the page's contents are the caller's to order; no table is linked here.
      leaf.pointee.store(physical | rights, ordering: .relaxed)
      return true
    }
  }

  /// Maps `count` stacks of `pages` 4 KiB pages, stack i from `start + i * stride`,
  /// writable and never executable, to consecutive frames from `physical`. Returns
  /// false as `map` does (then some may be mapped). A page table that does not exist yet
  /// is filled while no walker can see it and linked once: one write to a live table per
  /// 2 MiB rather than one per page. Under shadow paging (a hypervisor without nested
  /// EPT, as this project's nested KVM host runs) every write to a live page table traps;
  /// with 288 vCPUs each took milliseconds. Thread or boot context; takes the lock.
  func mapRun(start: UInt64, stride: UInt64, pages: Int, count: Int, physical: UInt64) -> Bool {
    let total = count * pages
    func address(_ n: Int) -> UInt64 { start + UInt64(n / pages) * stride + UInt64(n % pages) * Self.pageBytes }
    return Self.lock.withLock {
      var n = 0
      while n < total {
        var table = root
        for level in [UInt64(39), 30] {
          guard let next = Self.descend(table, index: Self.index(address(n), shift: level)) else { return false }
          table = next
        }
        let directoryEntry = table + Int(Self.index(address(n), shift: 21))
        let window = address(n) >> 21
        let rights = Self.present | Self.writable | Self.noExecute
        if directoryEntry.pointee.load(ordering: .relaxed) & Self.present != 0 {
          // A live table: one page at a time, as map() does.
          guard let leaf = leafEntry(address(n)), leaf.pointee.load(ordering: .relaxed) & Self.present == 0
          else { return false }
          leaf.pointee.store((physical + UInt64(n) * Self.pageBytes) | rights, ordering: .relaxed)
          n += 1
          continue
        }
        guard let page = KernelHeap.tryAllocate(bytes: Int(Self.pageBytes), alignment: Int(Self.pageBytes)) else {
          return false
        }
        page.initializeMemory(as: UInt8.self, repeating: 0, count: Int(Self.pageBytes))
        let entries = page.assumingMemoryBound(to: UInt64.self)
        while n < total && address(n) >> 21 == window {
          entries[Int(Self.index(address(n), shift: 12))] = (physical + UInt64(n) * Self.pageBytes) | rights
          n += 1
        }
        // Release: the filled table before the entry that links it; pairs with every
        // CPU's page walker and the acquire in rights(of:), as in descend().
        directoryEntry.pointee.store(UInt64(UInt(bitPattern: page)) | Self.present | Self.writable, ordering: .releasing)
      }
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
  func isMapped(_ address: UInt64) -> Bool { rights(of: address) != nil }

  /// What a supervisor access to a mapped page may do.
  struct Rights: Equatable {
    var writable: Bool
    var executable: Bool
  }

  /// The rights through which `address` is mapped, combined over every level as the
  /// CPU combines them (R/W ANDed, XD ORed: SDM Vol. 3A §4.6.1; CR0.WP is on), or nil
  /// if it is not mapped. Lock-free, as `isMapped`.
  func rights(of address: UInt64) -> Rights? {
    var table = root
    var rights = Rights(writable: true, executable: true)
    for level in stride(from: UInt64(39), through: 12, by: -9) {
      let entry = (table + Int(Self.index(address, shift: level))).pointee.load(ordering: .acquiring)
      // Acquire pairs with the release in descend(): the table it links is zeroed.
      guard entry & Self.present != 0 else { return nil }
      rights.writable = rights.writable && entry & Self.writable != 0
      rights.executable = rights.executable && entry & Self.noExecute == 0
      if level == 12 || (level != 39 && entry & Self.pageSize != 0) { return rights }
      table = UnsafeMutablePointer(bitPattern: UInt(entry & Self.addressMask))!
    }
    return rights
  }

  /// Changes the rights of the 4 KiB page mapped at `virtual`, keeping its frame and
  /// caching, and invalidates it on the running CPU. Returns false if no 4 KiB page
  /// maps it. Another CPU may keep the old rights in its TLB until it invalidates the
  /// page itself: the caller says why none can matter (KernelProtection's trampoline).
  /// Any CPU, thread or boot context; takes the page-table lock.
  func setRights(of virtual: UInt64, _ rights: Rights) -> Bool {
    Self.lock.withLock {
      guard let leaf = leafEntry(virtual) else { return false }
      let entry = leaf.pointee.load(ordering: .relaxed)
      guard entry & Self.present != 0 else { return false }
      let kept = entry & (Self.addressMask | Self.cacheBits | Self.present)
      let bits = (rights.writable ? Self.writable : 0) | (rights.executable ? 0 : Self.noExecute)
      // Relaxed: the INVLPG below serialises this CPU (SDM Vol. 3A §4.10.4.1).
      leaf.pointee.store(kept | bits, ordering: .relaxed)
      CPUInstructions.invalidatePage(virtual)
      return true
    }
  }

  /// Calls `body` with each range of virtual addresses mapped both writable and
  /// executable (merged where adjacent), walking every level from the root; returns
  /// how many ranges there were. Linux's ptdump W+X check (DEBUG_WX). Lock-free, as
  /// `isMapped`: a mapping made during the walk may or may not be seen.
  func forEachWritableExecutableRange(_ body: (UInt64, UInt64) -> Void) -> Int {
    var pending: (start: UInt64, end: UInt64)? = nil
    var count = 0
    Self.walk(root, level: 39, base: 0, writable: true, executable: true) { start, size in
      if let range = pending, range.end == start {
        pending = (range.start, start + size)
        return
      }
      if let range = pending { body(range.start, range.end) }
      pending = (start, start + size)
      count += 1
    }
    if let range = pending { body(range.start, range.end) }
    return count
  }

  /// Visits every present leaf under `table` (at `level`, mapping from `base`) that is
  /// writable and executable through every level above and itself.
  private static func walk(
    _ table: UnsafeMutablePointer<Atomic<UInt64>>, level: UInt64, base: UInt64, writable: Bool,
    executable: Bool, _ visit: (UInt64, UInt64) -> Void
  ) {
    for index in 0..<UInt64(512) {
      // Acquire pairs with the release in descend(), as in rights(of:).
      let entry = (table + Int(index)).pointee.load(ordering: .acquiring)
      guard entry & present != 0 else { continue }
      var address = base | index << level
      if level == 39 && index >= 256 { address |= 0xFFFF_0000_0000_0000 }  // canonical
      let canWrite = writable && entry & Self.writable != 0
      let canExecute = executable && entry & noExecute == 0
      guard canWrite && canExecute else { continue }  // nothing below can be W+X
      if level == 12 || (level != 39 && entry & pageSize != 0) {
        visit(address, 1 << level)
      } else {
        let next = UnsafeMutablePointer<Atomic<UInt64>>(bitPattern: UInt(entry & addressMask))!
        walk(next, level: level - 9, base: address, writable: canWrite, executable: canExecute, visit)
      }
    }
  }

  /// Replaces the 2 MiB page that maps `virtual` (in the identity map) with a table of
  /// 512 4 KiB pages mapping the same frames with the same caching, each with the
  /// rights `rights(address)` gives (nil: not present). Returns false if no 2 MiB page
  /// maps `virtual` or no memory is left for the table. Boot CPU, before any AP runs:
  /// a present entry changes, so the caller reloads CR3 and no other CPU may have
  /// used the old one.
  func splitLargePage(containing virtual: UInt64, _ rights: (UInt64) -> Rights?) -> Bool {
    Self.lock.withLock {
      var table = root
      for level in [UInt64(39), 30] {
        let entry = (table + Int(Self.index(virtual, shift: level))).pointee.load(ordering: .relaxed)
        guard entry & Self.present != 0, entry & Self.pageSize == 0 else { return false }
        table = UnsafeMutablePointer(bitPattern: UInt(entry & Self.addressMask))!
      }
      let directoryEntry = table + Int(Self.index(virtual, shift: 21))
      let large = directoryEntry.pointee.load(ordering: .relaxed)
      guard large & Self.present != 0, large & Self.pageSize != 0,
        let page = KernelHeap.tryAllocate(bytes: Int(Self.pageBytes), alignment: Int(Self.pageBytes))
      else { return false }
      let entries = page.bindMemory(to: UInt64.self, capacity: 512)
      let frame = large & Self.addressMask & ~(UInt64(1 << 21) - 1)
      for index in 0..<512 {
        let address = frame + UInt64(index) * Self.pageBytes
        guard let wanted = rights(address) else {
          entries[index] = 0
          continue
        }
        entries[index] =
          address | Self.present | (large & Self.cacheBits) | (wanted.writable ? Self.writable : 0)
          | (wanted.executable ? 0 : Self.noExecute)
      }
      // Release: the new table's entries before the entry that links it, for this CPU's
      // page walker after the caller's CR3 reload.
      directoryEntry.pointee.store(
        UInt64(UInt(bitPattern: page)) | Self.present | Self.writable, ordering: .releasing)
      return true
    }
  }

  /// Sets XD on every 2 MiB page of the identity map (PML4 entry 0). Boot CPU, before
  /// any AP runs; the caller reloads CR3 (present entries change).
  func forbidExecutionOfLargePages() {
    Self.lock.withLock {
      let pml4Entry = root.pointee.load(ordering: .relaxed)
      guard pml4Entry & Self.present != 0 else { return }
      let pdpt = UnsafeMutablePointer<Atomic<UInt64>>(bitPattern: UInt(pml4Entry & Self.addressMask))!
      for gigabyte in 0..<512 {
        let pdptEntry = (pdpt + gigabyte).pointee.load(ordering: .relaxed)
        guard pdptEntry & Self.present != 0, pdptEntry & Self.pageSize == 0 else { continue }
        let directory = UnsafeMutablePointer<Atomic<UInt64>>(bitPattern: UInt(pdptEntry & Self.addressMask))!
        for index in 0..<512 {
          let entry = (directory + index).pointee.load(ordering: .relaxed)
          guard entry & Self.present != 0, entry & Self.pageSize != 0 else { continue }
          // Relaxed: only this CPU runs, and the caller's CR3 reload serialises it.
          (directory + index).pointee.store(entry | Self.noExecute, ordering: .relaxed)
        }
      }
    }
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
