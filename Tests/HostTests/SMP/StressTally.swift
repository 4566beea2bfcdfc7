import Glibc
import LockstepKernel
import Synchronization

/// The bookkeeping of the cross-call stress test: per CPU, how many runs were expected
/// and how many happened, and every anomaly a call function saw.
final class StressTally: @unchecked Sendable {
  /// CPUs of the machine.
  let cpuCount: Int
  /// Runs on a CPU outside the call's intended set.
  let misplacedRuns = Atomic<Int>(0)
  /// Runs with interrupts on.
  let runsWithInterruptsOn = Atomic<Int>(0)
  /// Calls that threw when they should not have, or did not throw when they should.
  let unexpectedOutcomes = Atomic<Int>(0)
  /// Calls issued, of every kind.
  let callsIssued = Atomic<Int>(0)
  private let expected: UnsafeMutablePointer<Atomic<Int>>
  private let executed: UnsafeMutablePointer<Atomic<Int>>
  /// One probe per subset of CPUs, indexed by its bit mask.
  private(set) var probes: [StressProbe] = []

  /// A tally for `cpuCount` CPUs (at most 8: the probes cover every subset).
  init(cpuCount: Int) {
    precondition(cpuCount <= 8)
    self.cpuCount = cpuCount
    expected = .allocate(capacity: cpuCount)
    executed = .allocate(capacity: cpuCount)
    for cpu in 0..<cpuCount {
      (expected + cpu).initialize(to: Atomic(0))
      (executed + cpu).initialize(to: Atomic(0))
    }
    probes = (0..<(1 << cpuCount)).map { StressProbe(mask: $0, tally: self) }
  }

  deinit {
    expected.deinitialize(count: cpuCount)
    expected.deallocate()
    executed.deinitialize(count: cpuCount)
    executed.deallocate()
  }

  /// Notes that each CPU of `mask` will run the call once more, and returns the info
  /// that lets the call function check it runs where it should.
  func expect(_ mask: Int) -> UnsafeMutableRawPointer {
    for cpu in 0..<cpuCount where mask & (1 << cpu) != 0 {
      (expected + cpu).pointee.add(1, ordering: .relaxed)
    }
    callsIssued.add(1, ordering: .relaxed)
    return Unmanaged.passUnretained(probes[mask]).toOpaque()
  }

  /// Counts a run on `cpu`.
  func noteRun(on cpu: Int) { (executed + cpu).pointee.add(1, ordering: .relaxed) }

  /// Expected runs per CPU.
  var expectedRuns: [Int] { (0..<cpuCount).map { (expected + $0).pointee.load(ordering: .relaxed) } }

  /// Runs per CPU so far.
  var executedRuns: [Int] { (0..<cpuCount).map { (executed + $0).pointee.load(ordering: .relaxed) } }
}

/// The info of a stress call: the set of CPUs allowed to run it.
final class StressProbe: @unchecked Sendable {
  /// Bit `i` set: CPU `i` may run the call.
  let mask: Int
  private unowned let tally: StressTally

  /// A probe allowing the CPUs of `mask`, counting into `tally`.
  init(mask: Int, tally: StressTally) {
    self.mask = mask
    self.tally = tally
  }

  /// The call function of every stress call: checks the CPU and the interrupt flag,
  /// then counts the run.
  static var call: CallFunction {
    { info in Unmanaged<StressProbe>.fromOpaque(info!).takeUnretainedValue().ran() }
  }

  private func ran() {
    let cpu = FakePlatform.currentCPU.rawValue
    if mask & (1 << cpu) == 0 { tally.misplacedRuns.add(1, ordering: .relaxed) }
    if FakePlatform.interruptsEnabled { tally.runsWithInterruptsOn.add(1, ordering: .relaxed) }
    tally.noteRun(on: cpu)
  }
}

/// SplitMix64: a small seeded generator, so a failing stress run can be replayed
/// (choices only; the threads' interleaving is the host's).
struct SplitMix64: RandomNumberGenerator {
  private var state: UInt64

  /// A generator starting from `seed`.
  init(seed: UInt64) { state = seed }

  /// The next 64 random bits.
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var mixed = state
    mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
    mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
    return mixed ^ (mixed >> 31)
  }

  /// The seed from SMP_STRESS_SEED, or a fresh one.
  static var seedFromEnvironment: UInt64 {
    if let text = getenv("SMP_STRESS_SEED"), let seed = UInt64(String(cString: text)) { return seed }
    return UInt64.random(in: 0...UInt64.max)
  }
}
