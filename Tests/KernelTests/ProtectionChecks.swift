/// The `boot` suite's checks of W^X (KernelProtection.swift) and of the guard page
/// below every stack: the rights each kind of memory is mapped with, a W+X walk that
/// finds a W+X page planted on purpose (so the boot-time "none" can fail), and an
/// unmapped page, naming its owner, below each CPU's own and interrupt stacks.
enum ProtectionChecks {
  /// A page in PML4 entry 2, beside `PageTablesCheck.scratchPage` (which is never
  /// mapped again), used once here in the same way: mapped, checked and unmapped on the
  /// running CPU only.
  static let plantedPage: UInt64 = PageTablesCheck.scratchPage + 0x1000

  private static let code = PageTables.Rights(writable: false, executable: true)
  private static let readOnly = PageTables.Rights(writable: false, executable: false)
  private static let data = PageTables.Rights(writable: true, executable: false)

  static func layout() -> TestResult {
    let tables = PageTables.current
    let heap = KernelHeap.allocate(bytes: 64, alignment: 64)
    defer { KernelHeap.free(heap) }
    let stack = CPUInstructions.readStackPointer()
    let expected: [(StaticString, UInt64, PageTables.Rights?)] = [
      ("kernel text (ap_entry)", KernelSymbols.apEntry, code),
      ("the last text page", KernelSymbols.textEnd - 1, code),
      ("read-only data (the trampoline's source)", UInt64(UInt(bitPattern: KernelSymbols.trampoline.baseAddress!)), readOnly),
      ("data (the IDT)", UInt64(UInt(bitPattern: KernelSymbols.idtStorage)), data),
      ("the boot stack's guard page", KernelSymbols.bootStackGuard, nil),
      ("the boot stack", KernelSymbols.bootStackGuard + 4096, data),
      ("the running stack", stack, data),
      ("the heap", UInt64(UInt(bitPattern: heap)), data),
      ("the trampoline's code page, closed", Trampoline.base, data),
      ("the trampoline's parameters", Trampoline.parametersAddress, data),
      ("page 0", 0, data),
      ("the local APIC", 0xFEE0_0000, data),
    ]
    for (what, address, rights) in expected where tables.rights(of: address) != rights {
      return .fail("\(what) at \(hex: address) is \(describe(tables.rights(of: address))), not \(describe(rights))")
    }
    return .pass
  }

  /// The walk finds nothing, then exactly one page made W+X on purpose, then nothing.
  static func walkFindsAPlantedPage() -> TestResult {
    let tables = PageTables.current
    guard tables.forEachWritableExecutableRange({ _, _ in }) == 0 else { return .fail("W+X mappings before the test") }
    guard !tables.isMapped(plantedPage) else { return .fail("\(hex: plantedPage) mapped before the test") }
    let memory = KernelHeap.allocate(bytes: 4096, alignment: 4096)
    defer { KernelHeap.free(memory) }
    guard tables.map(virtual: plantedPage, physical: UInt64(UInt(bitPattern: memory)), writable: true) else {
      return .fail("map of \(hex: plantedPage) failed")
    }
    defer { tables.unmap(virtual: plantedPage) }
    guard tables.rights(of: plantedPage) == data else { return .fail("a new mapping is not rw- no-execute") }
    guard tables.setRights(of: plantedPage, PageTables.Rights(writable: true, executable: true)) else {
      return .fail("setRights on \(hex: plantedPage) failed")
    }
    var ranges: [(UInt64, UInt64)] = []
    let found = tables.forEachWritableExecutableRange { start, end in ranges.append((start, end)) }
    guard found == 1, ranges.count == 1, ranges[0].0 == plantedPage, ranges[0].1 == plantedPage + 4096 else {
      return .fail("the walk found \(found) W+X range(s), not the planted page \(hex: plantedPage)")
    }
    _ = tables.setRights(of: plantedPage, data)
    guard tables.forEachWritableExecutableRange({ _, _ in }) == 0 else { return .fail("W+X left after the test") }
    return .pass
  }

  /// Every possible CPU's IST stacks, and every online CPU's own stack, have an
  /// unmapped page below that names them.
  static func everyStackHasAGuard() -> TestResult {
    let tables = PageTables.current
    for index in 0..<CPUs.possibleCount {
      let block = PerCPU.block(CPUIndex(index))
      for slot in 1...CPUDescriptors.istCount {
        let top = block.pointee.descriptors.istTops[slot - 1]
        let guardPage = top - UInt64(CPUDescriptors.istStackSize) - 4096
        let expected = CPUDescriptors.stackName(slot)
        guard !tables.isMapped(guardPage), let owner = GuardedStacks.guardOwner(of: guardPage + 4095),
          owner.number == index, GuardedStacksCheck.equal(owner.owner, expected)
        else { return .fail("CPU \(index)'s \(expected) has no guard page naming it at \(hex: guardPage)") }
      }
    }
    for cpu in CPUs.online {
      let bottom = PerCPU.block(cpu).pointee.stackBottom
      guard !tables.isMapped(bottom - 1), GuardedStacks.guardOwner(of: bottom - 1) != nil else {
        return .fail("CPU \(cpu)'s own stack at \(hex: bottom) has no guard page below")
      }
    }
    return .pass
  }

  private static func describe(_ rights: PageTables.Rights?) -> StaticString {
    guard let rights else { return "unmapped" }
    switch (rights.writable, rights.executable) {
    case (true, true): return "rwx"
    case (true, false): return "rw-"
    case (false, true): return "r-x"
    case (false, false): return "r--"
    }
  }
}
