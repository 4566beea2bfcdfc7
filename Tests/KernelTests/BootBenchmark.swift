import Synchronization

/// `bench` on the command line: bring-up figures and the cache-line floor, printed as
/// `bench <metric> <unit> <samples...>` lines for `make bench` to pool across boots.
enum BootBenchmark {
  static let pingPongRounds = 200

  static func run(_ context: TestContext) {
    let outcome = context.bringUp
    let online = CPUs.online
    if online.count > 1 {
      let total = Clock.ticksToNanoseconds(lastOnlineTicks() &- outcome.firstINITTicks)
      log("bench bringup_total ns \(total)")
      if let floor = outcome.floorNanoseconds { log("bench bringup_floor ns \(floor)") }
      var starts = BenchLine("ap_start", unit: "ns")
      for cpu in online where cpu.rawValue > 0 {
        let onlineAt = PerCPU.block(cpu).pointee.onlineTSC
        starts.add(Clock.ticksToNanoseconds(onlineAt &- outcome.firstINITTicks))
      }
      starts.flush()
      log(
        "bench-note bring-up: APs start in parallel; the boot CPU waits in hlt, APs idle in hlt once online; times from the first INIT; bringup_floor is the same INIT-SIPI-SIPI with APs that only stamp the TSC and halt (no Swift), measured warm in the same boot"
      )
      CacheLinePingPong.measure(partner: 1, rounds: pingPongRounds)
      CallBenchmark.run()
      SchedBenchmark.run()
      StopBenchmark.run()
      SendStopBenchmark.run()
    } else {
      log("bench-note one CPU online: no bring-up or cache-line figures")
    }
  }

  private static func lastOnlineTicks() -> UInt64 {
    var last: UInt64 = 0
    for cpu in CPUs.online where cpu.rawValue > 0 {
      last = max(last, PerCPU.block(cpu).pointee.onlineTSC)
    }
    return last
  }
}

/// The floor of every cross-CPU figure: one cache line bouncing between two CPUs.
///
/// The boot CPU writes an odd value; the partner, spinning, sees it and writes the next
/// even value; the boot CPU times the round trip. The ball carries no other data, so
/// relaxed loads and stores suffice: only the line's own coherence traffic is measured.
enum CacheLinePingPong {
  /// The ball, alone on its cache line; allocated by `measure`.
  nonisolated(unsafe) private static var ball: UnsafeMutablePointer<Atomic<UInt64>>? = nil
  private static let stop = UInt64.max
  private static let waitBoundNanoseconds: UInt64 = 100_000_000

  /// Runs `rounds` round trips with CPU `partner` and prints the samples.
  static func measure(partner: Int, rounds: Int) {
    let storage = KernelHeap.allocate(bytes: 64, alignment: 64)
    let line = storage.bindMemory(to: Atomic<UInt64>.self, capacity: 1)
    line.initialize(to: Atomic<UInt64>(0))
    ball = line
    let group = ThreadGroup(capacity: 1)
    group.start(ThreadName("bench-ball", partner), on: CPUIndex(partner), respondEntry, nil)
    var samples = BenchLine("cacheline_rtt", unit: "ns")
    for round in 0..<UInt64(rounds) {
      let serve = 2 * round + 1
      let start = CPUInstructions.readTSC()
      line.pointee.store(serve, ordering: .relaxed)
      guard wait(for: serve + 1, on: line) else {
        log("bench: CPU \(partner) did not return the ball in round \(round) within 100 ms")
        break
      }
      samples.add(Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start))
    }
    line.pointee.store(stop, ordering: .relaxed)
    if let late = group.wait(milliseconds: 1000) {
      log("bench: cache-line partner, bound 1 s: \(line: late)")
    }
    samples.flush()
    log("bench-note cacheline_rtt: CPU 0 and CPU \(partner), partner spinning (busy); other CPUs idle in hlt")
  }

  /// `respond()` as the partner's thread (`bench-ball/N`).
  private static let respondEntry: CallFunction = { _ in respond() }

  /// The partner's side, run by its thread until the boot CPU says stop or goes quiet
  /// for longer than the bound.
  static func respond() {
    guard let line = ball else { return }
    var expected: UInt64 = 1
    while true {
      let start = Clock.nanoseconds()
      var value = line.pointee.load(ordering: .relaxed)
      while value != expected && value != stop {
        if Clock.nanoseconds() &- start > waitBoundNanoseconds {
          log("bench: CPU \(PerCPU.currentCPU) waited 100 ms for serve \(expected); leaving")
          return
        }
        value = line.pointee.load(ordering: .relaxed)
      }
      if value == stop { return }
      line.pointee.store(expected + 1, ordering: .relaxed)
      expected += 2
    }
  }

  private static func wait(for value: UInt64, on line: UnsafeMutablePointer<Atomic<UInt64>>) -> Bool {
    let start = Clock.nanoseconds()
    while line.pointee.load(ordering: .relaxed) != value {
      if Clock.nanoseconds() &- start > waitBoundNanoseconds { return false }
    }
    return true
  }
}
