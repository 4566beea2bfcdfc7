import Synchronization

/// One counter per possible CPU, for code that makes CPUs report in (the boot demo,
/// tests, benchmarks). Pass `info` as a call's argument and `countOnThisCPU` as its
/// function.
final class CPUCounters {
  let count: Int
  private let storage: UnsafeMutablePointer<Atomic<Int>>

  init() {
    count = CPUs.possibleCount
    storage = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: count)
    for index in 0..<count { (storage + index).initialize(to: Atomic<Int>(0)) }
  }

  deinit {
    storage.deinitialize(count: count)
    storage.deallocate()
  }

  /// The argument to pass with `countOnThisCPU`.
  var info: UnsafeMutableRawPointer { UnsafeMutableRawPointer(storage) }

  /// CPU `cpu`'s counter. Acquire pairs with the release in `countOnThisCPU`: whatever
  /// the CPU did before counting is visible once the count is.
  func value(_ cpu: CPUIndex) -> Int { storage[cpu.rawValue].load(ordering: .acquiring) }

  /// Sum over all CPUs.
  var total: Int { (0..<count).reduce(0) { $0 + value(CPUIndex($1)) } }

  /// Waits (bounded) until CPU `cpu`'s counter reaches `target`.
  func wait(for cpu: CPUIndex, toReach target: Int, milliseconds: UInt64) -> Bool {
    waitUntil(milliseconds: milliseconds) { value(cpu) >= target }
  }

  /// Waits (bounded) until the counters add up to `target`.
  func wait(forTotal target: Int, milliseconds: UInt64) -> Bool {
    waitUntil(milliseconds: milliseconds) { total >= target }
  }
}

/// A `CallFunction` that adds one to the running CPU's counter in a `CPUCounters`.
let countOnThisCPU: CallFunction = { info in
  let counters = info!.assumingMemoryBound(to: Atomic<Int>.self)
  // Release pairs with the acquire in CPUCounters.value(_:).
  counters[PerCPU.currentCPU.rawValue].wrappingAdd(1, ordering: .releasing)
}
