import Synchronization

/// Kernel stacks with an unmapped guard page below each, so an overflow faults at
/// once, and the page-fault report can name whose stack it was.
///
/// The stacks live in their own region, PML4 entry 1 (virtual 0x80_0000_0000 up, far
/// from the identity map and from the address the `fault_pf` test reads). Slots are
/// laid out upwards in allocation order, each
///
///     [guard page, unmapped][stack pages, mapped to heap memory][gap page, unmapped]
///
/// so every stack has an unmapped page below (overflow) and above (underflow, or a
/// runaway write from the next stack's guard side). A slot is never unmapped: a freed
/// stack keeps its pages and mapping for the next `allocate` of the same size, so the
/// region only ever gains mappings and no TLB shootdown is needed (PageTables.swift).
/// The physical pages are also reachable through the identity map; only accesses
/// through the region's addresses are guarded.
enum GuardedStacks {
  /// The first address of the region: PML4 entry 1 (SDM Vol. 3A Figure 4-11).
  static let regionBase: UInt64 = 0x80_0000_0000
  /// The region's size: what one PML4 entry maps, 512 GiB.
  static let regionBytes: UInt64 = 1 << 39
  /// Most slots the region records; `allocate` returns nil beyond. Every possible CPU
  /// has 4 interrupt stacks and up to 4 start-up stacks (at 288 CPUs, ~2300 slots),
  /// and each thread one.
  static let capacity = 8192
  /// Largest stack, in 4 KiB pages.
  static let maximumPages = 256
  static let pageBytes: UInt64 = 4096

  /// One slot's record. `guardPage` and `pages` are written once, before the slot is
  /// published; the owner is rewritten on reuse under a sequence count, so the fault
  /// handler can read it with no lock.
  private struct Slot: ~Copyable {
    /// Lowest address of the slot's guard page; the stack starts one page above.
    let guardPage: UInt64
    let pages: Int
    /// Even when the owner is stable, odd while `setOwner` rewrites it.
    let sequence = Atomic<UInt64>(0)
    /// The owner's `StaticString`, bit for bit (a trivial type of 17 bytes).
    let ownerWord0: Atomic<UInt64>
    let ownerWord1: Atomic<UInt64>
    let ownerWord2: Atomic<UInt64>
    let number: Atomic<Int>
    /// Free for reuse. Read and written under the lock only.
    var isFree = false

    init(guardPage: UInt64, pages: Int, owner: StaticString, number: Int) {
      self.guardPage = guardPage
      self.pages = pages
      let words = GuardedStacks.words(of: owner)
      ownerWord0 = Atomic(words.0)
      ownerWord1 = Atomic(words.1)
      ownerWord2 = Atomic(words.2)
      self.number = Atomic(number)
    }

    var bottom: UInt64 { guardPage + GuardedStacks.pageBytes }
    var top: UInt64 { bottom + UInt64(pages) * GuardedStacks.pageBytes }
  }

  /// `capacity` slot records, allocated by the first `allocate`.
  nonisolated(unsafe) private static var slots: UnsafeMutablePointer<Slot>? = nil
  /// Records 0..<published are complete; only `allocate` raises it, under the lock.
  private static let published = Atomic<Int>(0)
  /// Offset in the region of the next new slot. Under the lock.
  nonisolated(unsafe) private static var nextOffset: UInt64 = 0
  private static let lock = SpinLock<X86_64Platform>("guarded stacks")

  /// A stack of `pages` 4 KiB pages with an unmapped guard page below, recorded as
  /// `owner`'s stack `number` for fault reports. Reuses a released stack of the same
  /// size if there is one, else maps heap pages at the next free slot. Returns the
  /// stack's virtual [bottom, top) (top page aligned, so 16-byte aligned), or nil when
  /// `pages` is out of 1...`maximumPages`, the region is full, or memory runs out.
  /// Thread context, any CPU, after the heap is set up; takes locks and allocates.
  static func allocate(pages: Int, owner: StaticString, number: Int) -> (bottom: UInt64, top: UInt64)? {
    guard pages > 0 && pages <= maximumPages else { return nil }
    return lock.withLock {
      guard let table = slotTable() else { return nil }
      let count = published.load(ordering: .relaxed)  // Only we write it, under the lock.
      for index in 0..<count where table[index].isFree && table[index].pages == pages {
        setOwner(table + index, owner, number)
        table[index].isFree = false
        return (table[index].bottom, table[index].top)
      }
      return addSlot(table + count, index: count, pages: pages, owner: owner, number: number)
    }
  }

  /// `count` stacks of `pages` pages each, in new slots one after another, numbered
  /// 0..<count for `owner`: stack i is [bottom + i * stride, bottom + i * stride +
  /// pages * 4 KiB). For the AP trampoline, which picks a stack by arithmetic, and for
  /// every CPU's interrupt stacks (number = CPU). Never released. One heap block and one
  /// `PageTables.mapRun` for all (see there why). Nil as for `allocate`. Thread or boot
  /// context, after the heap is set up.
  static func allocateRun(count: Int, pages: Int, owner: StaticString) -> (bottom: UInt64, stride: UInt64)? {
    guard count > 0 && pages > 0 && pages <= maximumPages else { return nil }
    return lock.withLock {
      guard let table = slotTable() else { return nil }
      let first = published.load(ordering: .relaxed)  // Only we write it, under the lock.
      let stride = UInt64(pages + 2) * pageBytes
      let span = UInt64(count) * stride
      guard first + count <= capacity, nextOffset + span <= regionBytes,
        let memory = KernelHeap.tryAllocate(bytes: count * pages * Int(pageBytes), alignment: Int(pageBytes))
      else { return nil }
      let firstGuard = regionBase + nextOffset
      nextOffset += span  // claimed before mapping, as in addSlot()
      // One call for the whole run: its page tables are filled before they are linked.
      guard
        PageTables.current.mapRun(
          start: firstGuard + pageBytes, stride: stride, pages: pages, count: count,
          physical: UInt64(UInt(bitPattern: memory)))
      else { return nil }
      for number in 0..<count {
        let guardPage = firstGuard + UInt64(number) * stride
        (table + first + number).initialize(to: Slot(guardPage: guardPage, pages: pages, owner: owner, number: number))
      }
      // Publish the records; pairs with the acquire in guardOwner(of:).
      published.store(first + count, ordering: .releasing)
      return (firstGuard + pageBytes, stride)
    }
  }

  /// Gives the stack whose top is `top` back for a later `allocate` of the same size.
  /// Its pages stay mapped. The caller promises that nothing runs on the stack any
  /// more, nor can (no thread, interrupt or saved context still points into it): the
  /// next owner may write over it at once. Releasing a stack twice, or an address that
  /// is no stack's top, is a kernel bug and panics. Thread context, any CPU.
  static func release(top: UInt64) {
    lock.withLock {
      let count = published.load(ordering: .relaxed)  // Under the lock, as in allocate.
      guard let table = slots else { Panic.halt("stacks: release of \(hex: top) before any allocate") }
      for index in 0..<count where table[index].top == top {
        guard !table[index].isFree else { Panic.halt("stacks: \(hex: top) released twice") }
        table[index].isFree = true
        return
      }
      Panic.halt("stacks: release of \(hex: top), which is no stack's top")
    }
  }

  /// Whose guard page holds `address`: the owner and number its last `allocate`
  /// recorded (a released stack keeps its last owner), or nil if `address` is in no
  /// guard page. Any context, NMI and page fault included: no lock, no allocation, and
  /// a bounded wait of a few reads if the owner is being rewritten (then nil).
  static func guardOwner(of address: UInt64) -> (owner: StaticString, number: Int)? {
    // The boot stack is in the image, its guard page left unmapped by KernelProtection.
    let bootGuard = KernelSymbols.bootStackGuard
    if address >= bootGuard && address - bootGuard < pageBytes { return ("boot-stack", 0) }
    guard address >= regionBase && address - regionBase < regionBytes else { return nil }
    // Acquire pairs with the release in addSlot() and allocateRun(): the table pointer
    // and the records below `count` are written.
    let count = published.load(ordering: .acquiring)
    guard count > 0, let table = slots else { return nil }
    for index in 0..<count {
      let guardPage = table[index].guardPage
      if address >= guardPage && address - guardPage < pageBytes { return owner(of: table + index) }
    }
    return nil
  }

  /// The slot table, allocated on first use. Under the lock.
  private static func slotTable() -> UnsafeMutablePointer<Slot>? {
    if let table = slots { return table }
    let bytes = capacity * MemoryLayout<Slot>.stride
    guard let memory = KernelHeap.tryAllocate(bytes: bytes, alignment: 64) else { return nil }
    // Published to the fault handler by the release in addSlot(), with the first record.
    slots = memory.bindMemory(to: Slot.self, capacity: capacity)
    return slots
  }

  /// Maps a new slot at the region's next free offset and publishes its record as
  /// number `index`. Under the lock.
  private static func addSlot(
    _ record: UnsafeMutablePointer<Slot>, index: Int, pages: Int, owner: StaticString, number: Int
  ) -> (bottom: UInt64, top: UInt64)? {
    let span = UInt64(pages + 2) * pageBytes  // guard, stack, gap
    guard index < capacity, nextOffset + span <= regionBytes else { return nil }
    guard let memory = KernelHeap.tryAllocate(bytes: pages * Int(pageBytes), alignment: Int(pageBytes))
    else { return nil }
    let guardPage = regionBase + nextOffset
    // Claimed before mapping: should a page-table page be missing, the slot stays
    // unused for good rather than be mapped again (a changed mapping would need a
    // shootdown). Its memory is leaked with it.
    nextOffset += span
    let tables = PageTables.current
    let physical = UInt64(UInt(bitPattern: memory))
    for page in 0..<UInt64(pages) {
      let virtual = guardPage + (page + 1) * pageBytes
      guard tables.map(virtual: virtual, physical: physical + page * pageBytes, writable: true) else {
        return nil
      }
    }
    record.initialize(to: Slot(guardPage: guardPage, pages: pages, owner: owner, number: number))
    // Publish the record; pairs with the acquire in guardOwner(of:).
    published.store(index + 1, ordering: .releasing)
    return (record.pointee.bottom, record.pointee.top)
  }

  /// Rewrites a published slot's owner (a sequence lock: Linux's write_seqcount_begin
  /// and _end). Under the lock, so writers never meet.
  private static func setOwner(_ slot: UnsafeMutablePointer<Slot>, _ owner: StaticString, _ number: Int) {
    let sequence = slot.pointee.sequence.load(ordering: .relaxed)
    slot.pointee.sequence.store(sequence &+ 1, ordering: .relaxed)
    // The odd count is visible before any new word; pairs with the acquire fence in
    // owner(of:), so a reader that saw a new word sees the count move.
    atomicMemoryFence(ordering: .releasing)
    let words = words(of: owner)
    slot.pointee.ownerWord0.store(words.0, ordering: .relaxed)
    slot.pointee.ownerWord1.store(words.1, ordering: .relaxed)
    slot.pointee.ownerWord2.store(words.2, ordering: .relaxed)
    slot.pointee.number.store(number, ordering: .relaxed)
    // Release: the new words before the even count; pairs with the acquire load in
    // owner(of:).
    slot.pointee.sequence.store(sequence &+ 2, ordering: .releasing)
  }

  /// A published slot's owner, read consistently (Linux's read_seqcount_retry), or nil
  /// if a rewrite was under way on every one of a few attempts. Any context.
  private static func owner(of slot: UnsafeMutablePointer<Slot>) -> (owner: StaticString, number: Int)? {
    for _ in 0..<64 {
      // Acquire pairs with the releasing store that ends setOwner().
      let before = slot.pointee.sequence.load(ordering: .acquiring)
      let words = (
        slot.pointee.ownerWord0.load(ordering: .relaxed),
        slot.pointee.ownerWord1.load(ordering: .relaxed),
        slot.pointee.ownerWord2.load(ordering: .relaxed)
      )
      let number = slot.pointee.number.load(ordering: .relaxed)
      // The words are read before the count again; pairs with the release fence in
      // setOwner().
      atomicMemoryFence(ordering: .acquiring)
      if before & 1 == 0 && slot.pointee.sequence.load(ordering: .relaxed) == before {
        return (string(from: words), number)
      }
      CPUInstructions.pause()
    }
    return nil
  }

  /// `owner`'s bits as three words (StaticString is trivial: a copy of its bits is
  /// the same string).
  private static func words(of owner: StaticString) -> (UInt64, UInt64, UInt64) {
    var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
    withUnsafeMutableBytes(of: &words) { $0.storeBytes(of: owner, as: StaticString.self) }
    return words
  }

  private static func string(from words: (UInt64, UInt64, UInt64)) -> StaticString {
    withUnsafeBytes(of: words) { $0.load(as: StaticString.self) }
  }
}
