import LockstepKernel
import Testing

@Suite("CPUSet")
struct CPUSetTests {
  /// The word-boundary CPUs, where off-by-one bugs live.
  static let edges = [0, 63, 64, 511]

  @Test func wordCountCoversMaxCPUs() {
    #expect(CPUSet.wordCount * 64 == maxCPUs)
    #expect(maxCPUs == 512)
  }

  @Test(arguments: edges)
  func insertContainsRemove(cpu: Int) {
    var set = CPUSet()
    #expect(!set.contains(CPUIndex(cpu)))
    let inserted = set.insert(CPUIndex(cpu))
    #expect(inserted)
    let insertedAgain = set.insert(CPUIndex(cpu))
    #expect(!insertedAgain, "second insert reports already present")
    #expect(set.contains(CPUIndex(cpu)))
    #expect(set.count == 1)
    #expect(!set.isEmpty)
    #expect(Array(set) == [CPUIndex(cpu)])
    let removed = set.remove(CPUIndex(cpu))
    #expect(removed)
    let removedAgain = set.remove(CPUIndex(cpu))
    #expect(!removedAgain, "second remove reports already absent")
    #expect(!set.contains(CPUIndex(cpu)))
    #expect(set.isEmpty)
    #expect(set.count == 0)
  }

  @Test func neighboursAreIndependent() {
    var set = CPUSet([CPUIndex(63), CPUIndex(64)])
    set.remove(CPUIndex(63))
    #expect(set.contains(CPUIndex(64)))
    #expect(!set.contains(CPUIndex(62)))
    #expect(!set.contains(CPUIndex(65)))
    #expect(set.count == 1)
  }

  @Test func iteratesInAscendingOrder() {
    let set = CPUSet([511, 64, 0, 200, 63, 64, 130].map(CPUIndex.init))
    #expect(Array(set).map(\.rawValue) == [0, 63, 64, 130, 200, 511])
    #expect(set.count == 6)
    #expect(Array(CPUSet()).isEmpty)
  }

  @Test func iteratorStaysExhausted() {
    var iterator = CPUSet([CPUIndex(5)]).makeIterator()
    #expect(iterator.next() == CPUIndex(5))
    #expect(iterator.next() == nil)
    #expect(iterator.next() == nil)
  }

  @Test func iterationOnlyLastWord() {
    let set = CPUSet([CPUIndex(511), CPUIndex(448)])
    #expect(Array(set).map(\.rawValue) == [448, 511])
  }

  @Test func setAlgebra() {
    let a = CPUSet([0, 1, 64, 300].map(CPUIndex.init))
    let b = CPUSet([1, 64, 511].map(CPUIndex.init))
    #expect(Array(a.union(b)).map(\.rawValue) == [0, 1, 64, 300, 511])
    #expect(Array(a.intersection(b)).map(\.rawValue) == [1, 64])
    #expect(Array(a.subtracting(b)).map(\.rawValue) == [0, 300])
    #expect(Array(b.subtracting(a)).map(\.rawValue) == [511])
    var c = a
    c.formUnion(b)
    #expect(c == a.union(b))
    #expect(a.isSubset(of: c))
    #expect(b.isSubset(of: c))
    #expect(!a.isSubset(of: b))
    #expect(CPUSet().isSubset(of: a))
    #expect(a.intersection(CPUSet()).isEmpty)
  }

  @Test func equality() {
    #expect(CPUSet([CPUIndex(3), CPUIndex(400)]) == CPUSet([CPUIndex(400), CPUIndex(3)]))
    #expect(CPUSet([CPUIndex(3)]) != CPUSet([CPUIndex(400)]))
    #expect(CPUSet() == CPUSet())
  }

  @Test(arguments: [0, 1, 63, 64, 65, 128, 288, 511, 512])
  func firstCount(count: Int) {
    let set = CPUSet.first(count)
    #expect(set.count == count)
    #expect(Array(set).map(\.rawValue) == Array(0..<count))
  }

  @Test func firstMember() {
    #expect(CPUSet().first == nil)
    #expect(CPUSet([CPUIndex(300), CPUIndex(70)]).first == CPUIndex(70))
    #expect(CPUSet([CPUIndex(0)]).first == CPUIndex.boot)
    #expect(CPUSet([CPUIndex(511)]).first == CPUIndex(511))
  }

  @Test func nextAfter() {
    let set = CPUSet([3, 64, 511].map(CPUIndex.init))
    #expect(set.next(after: CPUIndex(0)) == CPUIndex(3))
    #expect(set.next(after: CPUIndex(3)) == CPUIndex(64))
    #expect(set.next(after: CPUIndex(63)) == CPUIndex(64))
    #expect(set.next(after: CPUIndex(64)) == CPUIndex(511))
    #expect(set.next(after: CPUIndex(510)) == CPUIndex(511))
    #expect(set.next(after: CPUIndex(511)) == nil)
    #expect(CPUSet.first(512).next(after: CPUIndex(62)) == CPUIndex(63))
    #expect(CPUSet().next(after: CPUIndex(0)) == nil)
  }

  @Test func cpuIndexAndAPICIDOrdering() {
    #expect(CPUIndex(1) < CPUIndex(2))
    #expect(CPUIndex.boot == CPUIndex(0))
    #expect(APICID(3) < APICID(300))
    #expect(APICID(0xFE).fitsXAPIC)
    #expect(!APICID(0xFF).fitsXAPIC)
    #expect(!APICID(300).fitsXAPIC)
    #expect(APICID.xAPICBroadcast == APICID(0xFF))
  }
}
