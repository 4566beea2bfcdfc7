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
      let nap = UnsafeMutablePointer<Timer>.allocate(capacity: 1)
      nap.initialize(to: Timer())
      block.pointee.napTimer = nap
    }
    CPUDescriptors.allocateInterruptStacks(count: count) { cpu, slot, top in
      blocks[cpu].descriptors.istTops[slot] = top
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

  /// Counts changes to which CPUs are online or active: bumped before and after each
  /// (odd while one is under way), so `online` and `active` return a set that existed
  /// at one instant even if their reader is preempted across two hotplug operations.
  /// Linux keeps its masks stable for holders of cpus_read_lock(); that lock is here
  /// too (`Stoppers.hotplugLock`), and lock-free readers retry instead. Writers: an AP
  /// joining, the CPU going down (inside the stop), the hotplug controller.
  private static let changes = Atomic<UInt64>(0)

  /// Runs `change`, a change to the online or active set, between the two bumps.
  /// Interrupts off (a writer must not be held up inside).
  static func changingMembership<Result>(_ change: () -> Result) -> Result {
    changes.wrappingAdd(1, ordering: .relaxed)
    // Release fence: the odd count is visible before the change; pairs with the
    // acquire fence in `snapshot`. Linux: write_seqcount_begin()'s smp_wmb().
    atomicMemoryFence(ordering: .releasing)
    let result = change()
    // Release: the change is visible before the even count; pairs with the acquire
    // load that begins `snapshot`.
    changes.wrappingAdd(1, ordering: .releasing)
    return result
  }

  /// The CPUs for which `isMember` holds, read between two equal, even counts.
  private static func snapshot(_ isMember: (CPUIndex) -> Bool) -> CPUSet {
    while true {
      // Acquire pairs with the release that ends `changingMembership`.
      let before = changes.load(ordering: .acquiring)
      if before & 1 == 0 {
        var set = CPUSet()
        for index in 0..<possibleCount where isMember(CPUIndex(index)) { set.insert(CPUIndex(index)) }
        // Acquire fence: the reads above come before the second look at the count;
        // pairs with the release fence in `changingMembership`.
        atomicMemoryFence(ordering: .acquiring)
        if changes.load(ordering: .relaxed) == before { return set }
      } else if SMPStop.shared?.isInProgress == true {
        // A writer stopped for good mid-change leaves the count odd for ever: after a
        // stop, a set read without the count's check is the best there is.
        var set = CPUSet()
        for index in 0..<possibleCount where isMember(CPUIndex(index)) { set.insert(CPUIndex(index)) }
        return set
      }
      CPUInstructions.pause()
    }
  }

  /// The CPUs currently online. Linux: cpu_online_mask.
  static var online: CPUSet { snapshot { state(of: $0) == .online } }

  /// The CPUs currently active (online, with a running stopper, not on their way
  /// down). Linux: cpu_active_mask.
  static var active: CPUSet { snapshot { PerCPU.block($0).pointee.active.load(ordering: .acquiring) } }

  /// Marks `cpu` active or not, between the bumps. Release: pairs with the acquire
  /// in `active`.
  static func setActive(_ cpu: CPUIndex, _ isActive: Bool) {
    let state = CPUInstructions.saveAndDisableInterrupts()
    changingMembership { PerCPU.block(cpu).pointee.active.store(isActive, ordering: .releasing) }
    CPUInstructions.restoreInterrupts(state)
  }

  /// Every possible CPU, 0..<possibleCount.
  static var possible: [CPUIndex] { (0..<possibleCount).map { CPUIndex($0) } }
}
