import Synchronization

/// The machine's CPUs: the table from the MADT and one `PerCPU` block per possible CPU.
enum CPUs {
  /// Set (release) once the blocks are complete; APs read it (acquire)
  /// before touching either.
  private static let published = Atomic<Bool>(false)

  /// Allocates and fills the per-CPU blocks for `table`, installs CPU 0's on the boot
  /// CPU, and publishes both. Boot CPU, once, interrupts off.
  static func setUp(_ table: CPUTable) {
    let count = table.count
    let blocks = UnsafeMutablePointer<PerCPU>(
      KernelHeap.allocate(bytes: count * MemoryLayout<PerCPU>.stride, alignment: 64)
        .assumingMemoryBound(to: PerCPU.self))
    for index in 0..<count {
      let block = blocks + index
      block.initialize(
        to: PerCPU(
          selfAddress: UInt64(UInt(bitPattern: block)), index: index,
          apicID: table.apicID(of: CPUIndex(index)).rawValue))
      block.pointee.descriptors.allocateInterruptStacks()
    }
    PerCPU.blocks = blocks
    PerCPU.blockCount = count
    // Publish the table and blocks; pairs with the acquire in waitForTable().
    published.store(true, ordering: .releasing)
  }

  /// For an AP: the CPU number the table gives `apicID`, nil if it has none or the
  /// table is not published yet. Reads the per-CPU blocks only: no array is copied, so
  /// no reference count is touched by 63 APs at once.
  static func index(of apicID: APICID) -> Int? {
    // Acquire pairs with the release in setUp(): the blocks are initialised.
    guard published.load(ordering: .acquiring) else { return nil }
    for index in 0..<PerCPU.blockCount where PerCPU.block(index).pointee.apicID == apicID.rawValue {
      return index
    }
    return nil
  }

  /// CPU `cpu`'s APIC ID, from its block (no array is touched: usable in IRQ context).
  static func apicID(of cpu: CPUIndex) -> APICID {
    APICID(PerCPU.block(cpu.rawValue).pointee.apicID)
  }

  /// Number of possible CPUs (blocks).
  static var count: Int { PerCPU.blockCount }

  /// CPU `index`'s lifecycle state (acquire: see `CPULifecycle.state`).
  static func state(of index: Int) -> CPUState {
    PerCPU.block(index).pointee.lifecycle.state
  }

  /// The CPUs currently online.
  static var online: CPUSet {
    var set = CPUSet()
    for index in 0..<count where state(of: index) == .online {
      set.insert(CPUIndex(index))
    }
    return set
  }
}
