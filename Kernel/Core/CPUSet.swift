// A set of CPUs as a fixed-size bitmap, the analogue of Linux's `struct cpumask`.
//
// The bitmap is a value stored inline (no heap), so it can be built and passed on IRQ, NMI
// and stop paths, which must never allocate (docs/architecture.md, principle 10).

/// A set of logical CPUs: one bit per `CPUIndex` in `0..<maxCPUs`.
///
/// Linux: struct cpumask (cpumask_set_cpu(), cpumask_test_cpu(), for_each_cpu(), ...).
/// - Precondition: every `CPUIndex` given to a `CPUSet` is in `0..<maxCPUs`.
public struct CPUSet: Equatable, Sendable, Sequence {
  /// Number of 64-bit words: `maxCPUs / 64`. An integer generic argument must be a literal,
  /// so this is 8; a host test checks `wordCount * 64 == maxCPUs`.
  public static let wordCount = 8

  /// The bits; CPU `i` is bit `i % 64` of word `i / 64`.
  private var words: InlineArray<8, UInt64>

  /// Creates an empty set.
  ///
  /// Linux: cpumask_clear()
  public init() {
    words = InlineArray(repeating: 0)
  }

  /// Creates a set holding the given CPUs.
  ///
  /// - Parameter cpus: CPUs to insert; duplicates are allowed.
  public init(_ cpus: some Sequence<CPUIndex>) {
    self.init()
    for cpu in cpus {
      insert(cpu)
    }
  }

  /// The set of CPUs `0..<count`.
  ///
  /// - Parameter count: how many CPUs, `0...maxCPUs`.
  /// - Returns: the set of the first `count` CPUs.
  public static func first(_ count: Int) -> CPUSet {
    precondition(count >= 0 && count <= maxCPUs, "CPU count out of range")
    var set = CPUSet()
    for word in 0..<wordCount {
      let bitsBelow = count - word * 64
      if bitsBelow >= 64 {
        set.words[word] = ~0
      } else if bitsBelow > 0 {
        set.words[word] = (1 << UInt64(bitsBelow)) - 1
      }
    }
    return set
  }

  /// Splits a CPU into its word index and bit mask, checking the range.
  private static func position(of cpu: CPUIndex) -> (word: Int, mask: UInt64) {
    precondition(cpu.rawValue >= 0 && cpu.rawValue < maxCPUs, "CPU index out of range")
    return (cpu.rawValue / 64, 1 << UInt64(cpu.rawValue % 64))
  }

  /// Adds a CPU.
  ///
  /// Linux: cpumask_set_cpu() (and cpumask_test_and_set_cpu() for the result).
  /// - Parameter cpu: the CPU to add.
  /// - Returns: `true` if the CPU was not already in the set.
  @discardableResult
  public mutating func insert(_ cpu: CPUIndex) -> Bool {
    let (word, mask) = Self.position(of: cpu)
    let wasAbsent = words[word] & mask == 0
    words[word] |= mask
    return wasAbsent
  }

  /// Removes a CPU.
  ///
  /// Linux: cpumask_clear_cpu() (and cpumask_test_and_clear_cpu() for the result).
  /// - Parameter cpu: the CPU to remove.
  /// - Returns: `true` if the CPU was in the set.
  @discardableResult
  public mutating func remove(_ cpu: CPUIndex) -> Bool {
    let (word, mask) = Self.position(of: cpu)
    let wasPresent = words[word] & mask != 0
    words[word] &= ~mask
    return wasPresent
  }

  /// Tests membership.
  ///
  /// Linux: cpumask_test_cpu()
  /// - Parameter cpu: the CPU to test.
  /// - Returns: `true` if `cpu` is in the set.
  public func contains(_ cpu: CPUIndex) -> Bool {
    let (word, mask) = Self.position(of: cpu)
    return words[word] & mask != 0
  }

  /// The number of CPUs in the set.
  ///
  /// Linux: cpumask_weight()
  public var count: Int {
    var total = 0
    for word in 0..<Self.wordCount {
      total += words[word].nonzeroBitCount
    }
    return total
  }

  /// Whether the set holds no CPU.
  ///
  /// Linux: cpumask_empty()
  public var isEmpty: Bool {
    for word in 0..<Self.wordCount where words[word] != 0 {
      return false
    }
    return true
  }

  /// The lowest-numbered CPU in the set, or `nil` if it is empty.
  ///
  /// Linux: cpumask_first() (which returns nr_cpu_ids instead of nil).
  public var first: CPUIndex? {
    firstMember(fromWord: 0, mask: ~0)
  }

  /// The lowest-numbered CPU in the set above `cpu`.
  ///
  /// Linux: cpumask_next()
  /// - Parameter cpu: the CPU to search after; it need not be in the set.
  /// - Returns: the next member, or `nil` if none is above `cpu`.
  public func next(after cpu: CPUIndex) -> CPUIndex? {
    let (word, mask) = Self.position(of: cpu)
    // Keep only the bits strictly above `cpu` in its own word: ~(mask | (mask - 1)).
    return firstMember(fromWord: word, mask: ~(mask | (mask &- 1)))
  }

  /// The first member at or after word `start`, with `mask` applied to that first word only.
  private func firstMember(fromWord start: Int, mask: UInt64) -> CPUIndex? {
    var bits = words[start] & mask
    var word = start
    while true {
      if bits != 0 {
        return CPUIndex(word * 64 + bits.trailingZeroBitCount)
      }
      word += 1
      if word == Self.wordCount {
        return nil
      }
      bits = words[word]
    }
  }

  /// Combines two sets word by word.
  private func combined(with other: CPUSet, _ op: (UInt64, UInt64) -> UInt64) -> CPUSet {
    var result = CPUSet()
    for word in 0..<Self.wordCount {
      result.words[word] = op(words[word], other.words[word])
    }
    return result
  }

  /// The CPUs in either set.
  ///
  /// Linux: cpumask_or()
  /// - Parameter other: another set.
  /// - Returns: `self ∪ other`.
  public func union(_ other: CPUSet) -> CPUSet {
    combined(with: other) { $0 | $1 }
  }

  /// The CPUs in both sets.
  ///
  /// Linux: cpumask_and()
  /// - Parameter other: another set.
  /// - Returns: `self ∩ other`.
  public func intersection(_ other: CPUSet) -> CPUSet {
    combined(with: other) { $0 & $1 }
  }

  /// The CPUs in this set but not in `other`.
  ///
  /// Linux: cpumask_andnot()
  /// - Parameter other: the CPUs to take away.
  /// - Returns: `self \ other`.
  public func subtracting(_ other: CPUSet) -> CPUSet {
    combined(with: other) { $0 & ~$1 }
  }

  /// Adds every CPU of `other` to this set.
  ///
  /// Linux: cpumask_or() with the destination as a source.
  /// - Parameter other: the CPUs to add.
  public mutating func formUnion(_ other: CPUSet) {
    self = union(other)
  }

  /// Whether every CPU in this set is also in `other`.
  ///
  /// Linux: cpumask_subset()
  /// - Parameter other: the candidate superset.
  /// - Returns: `true` if `self ⊆ other`.
  public func isSubset(of other: CPUSet) -> Bool {
    subtracting(other).isEmpty
  }

  /// Compares two sets bit for bit.
  ///
  /// Linux: cpumask_equal()
  /// - Parameters:
  ///   - lhs: a set.
  ///   - rhs: another set.
  /// - Returns: `true` if both hold the same CPUs.
  public static func == (lhs: CPUSet, rhs: CPUSet) -> Bool {
    for word in 0..<wordCount where lhs.words[word] != rhs.words[word] {
      return false
    }
    return true
  }

  /// The exact member count, so `Array(set)` reserves the right capacity.
  public var underestimatedCount: Int {
    count
  }

  /// Iterates over the members in ascending order.
  ///
  /// Linux: for_each_cpu()
  /// - Returns: an iterator over a snapshot of the set.
  public func makeIterator() -> Iterator {
    Iterator(words: words)
  }

  /// Yields the members of a snapshot of a `CPUSet` in ascending order, skipping zero words.
  public struct Iterator: IteratorProtocol, Sendable {
    /// The snapshot being walked.
    private let words: InlineArray<8, UInt64>
    /// Index of the word `remaining` came from.
    private var word = 0
    /// Bits of the current word not yet yielded.
    private var remaining: UInt64

    /// Starts at the first word of `words`.
    fileprivate init(words: InlineArray<8, UInt64>) {
      self.words = words
      self.remaining = words[0]
    }

    /// Returns the next member, or `nil` when all have been yielded.
    public mutating func next() -> CPUIndex? {
      while remaining == 0 {
        word += 1
        if word == CPUSet.wordCount {
          // Stay exhausted on later calls.
          word -= 1
          return nil
        }
        remaining = words[word]
      }
      let bit = remaining.trailingZeroBitCount
      // Clear the lowest set bit.
      remaining &= remaining &- 1
      return CPUIndex(word * 64 + bit)
    }
  }
}
