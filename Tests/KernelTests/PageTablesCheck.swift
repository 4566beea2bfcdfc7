/// The `boot` suite's check of `PageTables` beyond what guarded stacks use: a walk
/// through the boot map's 2 MiB pages, a refused map over one, and a map and unmap.
enum PageTablesCheck {
  /// A page in PML4 entry 2, which nothing else maps: mapped, written and unmapped
  /// here on the running CPU only, and never mapped again, so no other CPU's possibly
  /// stale translation of it can matter (PageTables.swift).
  static let scratchPage: UInt64 = 0x100_0000_0000

  static func run() -> TestResult {
    let tables = PageTables.current
    // The kernel image and the heap sit in the boot map's 2 MiB pages (Boot/boot.asm).
    guard tables.isMapped(0x20_0000), tables.isMapped(0xFFFF_F000) else {
      return .fail("the identity map's 2 MiB pages do not walk as mapped")
    }
    guard !tables.isMapped(FaultSuites.unmappedAddress) else {
      return .fail("\(hex: FaultSuites.unmappedAddress) walks as mapped")
    }
    guard !tables.map(virtual: 0x20_0000, physical: 0x20_0000, writable: true) else {
      return .fail("map over a 2 MiB page succeeded")
    }
    return mapWriteUnmap(tables)
  }

  /// Maps a heap page at `scratchPage`, checks it is the same memory, unmaps it.
  private static func mapWriteUnmap(_ tables: PageTables) -> TestResult {
    guard !tables.isMapped(scratchPage) else { return .fail("\(hex: scratchPage) mapped before the test") }
    let memory = KernelHeap.allocate(bytes: 4096, alignment: 4096)
    defer { KernelHeap.free(memory) }
    guard tables.map(virtual: scratchPage, physical: UInt64(UInt(bitPattern: memory)), writable: true)
    else { return .fail("map of \(hex: scratchPage) failed") }
    let alias = UnsafeMutablePointer<UInt64>(bitPattern: UInt(scratchPage + 64))!
    alias.pointee = 0xC0FF_EE00_1234_5678
    let seen = memory.load(fromByteOffset: 64, as: UInt64.self)
    tables.unmap(virtual: scratchPage)
    guard seen == 0xC0FF_EE00_1234_5678 else { return .fail("the mapped page is not the heap page") }
    guard !tables.isMapped(scratchPage) else { return .fail("\(hex: scratchPage) still mapped after unmap") }
    return .pass
  }
}
