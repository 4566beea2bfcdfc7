import Synchronization

/// The machine's CPUs: the table from the MADT and one `PerCPU` block per possible CPU.
enum CPUs {
  /// Set (release) once the blocks are complete; APs read it (acquire) before
  /// touching them.
  private static let published = Atomic<Bool>(false)

  /// How many CPUs may exist (Linux: nr_cpu_ids): CPUs 0..<possibleCount have a
  /// per-CPU block; every per-CPU array is sized by it. Set once by `setUp`.
  nonisolated(unsafe) private(set) static var possibleCount = 0

  /// Allocates and fills the per-CPU blocks for `table` and publishes them. Boot CPU,
  /// once, interrupts off.
  static func setUp(_ table: CPUTable) {
    let count = table.count
    let blocks = UnsafeMutablePointer<PerCPU>(
      KernelHeap.allocate(bytes: count * MemoryLayout<PerCPU>.stride, alignment: 64)
        .assumingMemoryBound(to: PerCPU.self))
    for entry in table.entries {
      let block = blocks + entry.cpu.rawValue
      block.initialize(
        to: PerCPU(selfAddress: UInt64(UInt(bitPattern: block)), cpu: entry.cpu, apicID: entry.apicID))
      block.pointee.descriptors.allocateInterruptStacks()
      let nap = UnsafeMutablePointer<Timer>.allocate(capacity: 1)
      nap.initialize(to: Timer())
      block.pointee.napTimer = nap
    }
    PerCPU.blocks = blocks
    possibleCount = count
    // Publish the blocks; pairs with the acquire in cpu(for:).
    published.store(true, ordering: .releasing)
  }

  /// For an AP: the CPU number the table gives `apicID`, nil if it has none or the
  /// blocks are not published yet. Reads the per-CPU blocks only: no array is copied,
  /// so no reference count is touched by 63 APs at once.
  static func cpu(for apicID: APICID) -> CPUIndex? {
    // Acquire pairs with the release in setUp(): the blocks are initialised.
    guard published.load(ordering: .acquiring) else { return nil }
    for index in 0..<possibleCount where (PerCPU.blocks! + index).pointee.apicID == apicID {
      return CPUIndex(index)
    }
    return nil
  }

  /// CPU `cpu`'s APIC ID: the one map from CPU numbers to APIC IDs, read from the
  /// CPU's block (no array is touched: usable in IRQ and NMI context).
  static func apicID(of cpu: CPUIndex) -> APICID {
    PerCPU.block(cpu).pointee.apicID
  }

  /// CPU `cpu`'s lifecycle state (acquire: see `CPULifecycle.state`).
  static func state(of cpu: CPUIndex) -> CPUState {
    PerCPU.block(cpu).pointee.lifecycle.state
  }

  /// The CPUs currently online.
  static var online: CPUSet {
    var set = CPUSet()
    for index in 0..<possibleCount where state(of: CPUIndex(index)) == .online {
      set.insert(CPUIndex(index))
    }
    return set
  }

  /// Every possible CPU, 0..<possibleCount.
  static var possible: [CPUIndex] { (0..<possibleCount).map { CPUIndex($0) } }
}
