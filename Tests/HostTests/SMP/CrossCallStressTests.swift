import LockstepKernel
import Synchronization
import Testing

/// One fake CPU's share of the stress test: random calls of every kind to random
/// targets, each counted in the tally before it is issued.
struct StressIssuer {
  /// The machine the calls run on.
  let machine: FakeMachine
  /// Where expected and executed runs are counted.
  let tally: StressTally
  /// The issuing CPU.
  let me: Int
  /// This CPU's choices, seeded from the test's seed and `me`.
  var random: SplitMix64
  /// This CPU's records for `callSingleAsync`, used round robin.
  let records: RecordPool
  private var nextRecord = 0

  /// The issuer for CPU `me`, its choices derived from `seed`.
  init(machine: FakeMachine, tally: StressTally, me: Int, seed: UInt64) {
    self.machine = machine
    self.tally = tally
    self.me = me
    random = SplitMix64(seed: seed ^ (UInt64(me + 1) &* 0x9E37_79B9_7F4A_7C15))
    records = RecordPool(count: 8, function: StressProbe.call)
  }

  private var all: Int { (1 << tally.cpuCount) - 1 }
  private var calls: CrossCalls<FakePlatform> { machine.calls }

  private mutating func pick(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }

  /// Issues one random call; some are made with interrupts off.
  mutating func issueOne() {
    let kind = pick(10)
    let target = pick(tally.cpuCount)
    let mask = pick(all + 1)
    let wait = pick(2) == 0
    // An async record is reused only once free; spinning for it with interrupts off
    // while another CPU does the same towards us would never end. Keep those on.
    let interruptsOff = kind != 1 && pick(6) == 0
    if interruptsOff { FakePlatform.disableInterrupts() }
    issue(kind: kind, target: target, mask: mask, wait: wait)
    if interruptsOff { FakePlatform.enableInterrupts() }
  }

  private mutating func issue(kind: Int, target: Int, mask: Int, wait: Bool) {
    let others = all & ~(1 << me)
    switch kind {
    case 0, 9: single(target: target, wait: wait)
    case 1: singleAsync(target: target)
    case 2: any(mask: mask, wait: wait)
    case 3: calls.callMany(mask.cpuSet, StressProbe.call, tally.expect(mask & others), wait: wait)
    case 4: calls.callOthers(StressProbe.call, tally.expect(others), wait: wait)
    case 5: calls.onEachCPU(StressProbe.call, tally.expect(all), wait: wait)
    case 6: calls.onEachCPU(in: mask.cpuSet, StressProbe.call, tally.expect(mask), wait: wait)
    case 7:
      let info = tally.expect(mask)
      calls.onEachCPU(
        where: { cpu, _ in mask & (1 << cpu.rawValue) != 0 }, StressProbe.call, info, wait: wait)
    default: calls.kickAllCPUsSync()
    }
  }

  private func single(target: Int, wait: Bool) {
    let info = tally.expect(1 << target)
    count(
      caughtError { try calls.callSingle(on: CPUIndex(target), StressProbe.call, info, wait: wait) },
      expected: nil)
  }

  private mutating func singleAsync(target: Int) {
    let record = records[nextRecord]
    nextRecord = (nextRecord + 1) % records.count
    guard FakePlatform.spin(timeout: 5, until: { !record.pointee.isLocked }) else {
      tally.unexpectedOutcomes.add(1, ordering: .relaxed)
      return
    }
    record.pointee.info = tally.expect(1 << target)
    count(caughtError { try calls.callSingleAsync(on: CPUIndex(target), record) }, expected: nil)
  }

  private func any(mask: Int, wait: Bool) {
    guard mask != 0 else {
      count(
        caughtError { try calls.callAny(of: CPUSet(), StressProbe.call, nil, wait: wait) },
        expected: .noOnlineCPU)
      return
    }
    let chosen = mask & (1 << me) != 0 ? me : mask.trailingZeroBitCount
    let info = tally.expect(1 << chosen)
    count(
      caughtError { try calls.callAny(of: mask.cpuSet, StressProbe.call, info, wait: wait) }, expected: nil)
  }

  private func count(_ outcome: CrossCallError?, expected: CrossCallError?) {
    if outcome != expected { tally.unexpectedOutcomes.add(1, ordering: .relaxed) }
  }
}

extension Int {
  /// The CPUs whose bits are set.
  fileprivate var cpuSet: CPUSet {
    CPUSet((0..<bitWidth).filter { self & (1 << $0) != 0 }.map(CPUIndex.init))
  }
}

extension SMPTests {
  /// Every API at once, from every CPU, to random targets.
  @Suite("Stress")
  struct CrossCallStressTests {
    /// Fake CPUs in the stress machine.
    static let cpuCount = 4
    /// Random calls each CPU issues.
    static let callsPerCPU = 4000

    @Test func randomCallsFromEveryCPU() {
      let seed = SplitMix64.seedFromEnvironment
      print("SMP stress seed: \(seed) (replay the choices with SMP_STRESS_SEED=\(seed))")
      FakeMachine.with(cpus: Self.cpuCount, watchdogTimeout: 5_000_000_000) { machine in
        let tally = StressTally(cpuCount: Self.cpuCount)
        let issuers = (0..<Self.cpuCount).map {
          StressIssuer(machine: machine, tally: tally, me: $0, seed: seed)
        }
        let jobs = issuers.map { issuer in
          machine.start(on: issuer.me) {
            var issuer = issuer
            for _ in 0..<Self.callsPerCPU { issuer.issueOne() }
          }
        }
        for job in jobs { machine.finish(job, timeout: 15) }
        let settled = HostClock.poll(timeout: 5) { tally.executedRuns == tally.expectedRuns }
        let naps = machine.cpus.map { $0.napsTimedOut.load(ordering: .relaxed) }
        print(
          "SMP stress: \(tally.callsIssued.load(ordering: .relaxed)) calls, runs per CPU"
            + " \(tally.executedRuns), naps ended by their timer per CPU \(naps)")
        #expect(settled, "seed \(seed): expected \(tally.expectedRuns), executed \(tally.executedRuns)")
        #expect(tally.callsIssued.load(ordering: .relaxed) > Self.cpuCount * Self.callsPerCPU * 8 / 10)
        #expect(tally.misplacedRuns.load(ordering: .relaxed) == 0, "seed \(seed)")
        #expect(tally.runsWithInterruptsOn.load(ordering: .relaxed) == 0, "seed \(seed)")
        #expect(tally.unexpectedOutcomes.load(ordering: .relaxed) == 0, "seed \(seed)")
        #expect(machine.logLines(containing: "csd:").isEmpty, "seed \(seed): \(machine.log)")
        #expect(HostClock.poll(timeout: 5) { issuers.allSatisfy { $0.records.allUnlocked } })
      }
    }
  }
}
