import Synchronization

/// Cross-call figures for `make bench`, each measured twice: with the target CPUs idle
/// in `hlt`, and busy (spinning in thread context with interrupts on). Printed as
/// `bench <metric> ns <samples...>`; the floor (`cacheline_rtt`) is measured in the
/// same boot by `CacheLinePingPong`.
enum CallBenchmark {
  static let singleSamples = 200
  static let othersSamples = 50

  static func run() {
    let others = IPISuite.others
    guard let partner = others.first else { return }
    for busy in [false, true] {
      let spinners = busy ? BusyCPUs(others) : nil
      let suffix: StaticString = busy ? "busy" : "idle"
      measure("call_single", suffix, singleSamples) { waitingSingle(to: partner) }
      measure("async_latency", suffix, singleSamples) { asyncLatency(to: partner) }
      measure("call_others", suffix, othersSamples) { waitingOthers() }
      spinners?.stop()
    }
    log(
      "bench-note call_*_idle: targets idle in hlt; call_*_busy: targets spinning with interrupts on; caller is CPU 0"
    )
    AllToAll.run()
  }

  /// Prints `samples` results of `sample()` as `bench <name>_<suffix> ns ...`.
  private static func measure(
    _ name: StaticString, _ suffix: StaticString, _ samples: Int, _ sample: () -> UInt64
  ) {
    var line = LogLine()
    func start() {
      line = "bench "; line.append(name); line.append("_"); line.append(suffix); line.append(" ns")
    }
    start()
    for _ in 0..<samples {
      line.append(" ")
      line.append(decimal: Int(sample()))
      if line.count > LogLine.capacity - 24 {
        log(line)
        start()
      }
    }
    log(line)
  }

  private static func waitingSingle(to cpu: CPUIndex) -> UInt64 {
    let start = CPUInstructions.readTSC()
    try? SMP.calls.callSingle(on: cpu, { _ in }, nil, wait: true)
    return Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start)
  }

  private static func waitingOthers() -> UInt64 {
    let start = CPUInstructions.readTSC()
    SMP.calls.callOthers({ _ in }, nil, wait: true)
    return Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start)
  }

  /// From just before the async call is queued to the moment its function starts.
  private static func asyncLatency(to cpu: CPUIndex) -> UInt64 {
    let stamp = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: 1)
    stamp.initialize(to: Atomic<UInt64>(0))
    let record = OwnedRecord(stampTSC, UnsafeMutableRawPointer(stamp))
    let start = CPUInstructions.readTSC()
    try? SMP.calls.callSingleAsync(on: cpu, record.pointer)
    _ = waitUntil(milliseconds: 1000) { !record.pointer.pointee.isLocked }
    let ran = stamp.pointee.load(ordering: .relaxed)
    stamp.deallocate()
    return ran > start ? Clock.ticksToNanoseconds(ran - start) : 0
  }

  private static let stampTSC: CallFunction = { info in
    info!.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.store(
      CPUInstructions.readTSC(), ordering: .relaxed)
  }
}

/// Keeps CPUs busy in thread context, interrupts on, until stopped.
final class BusyCPUs {
  private let stopFlag = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 1)
  private let running = CPUCounters()
  private let cpus: CPUSet

  init(_ cpus: CPUSet) {
    self.cpus = cpus
    stopFlag.initialize(to: Atomic<Int>(0))
    let control = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: 2)
    control[0] = UnsafeMutableRawPointer(stopFlag)
    control[1] = running.info
    for cpu in cpus { Idle.post(BusyCPUs.spin, UnsafeMutableRawPointer(control), to: cpu.rawValue) }
    _ = running.wait(forTotal: cpus.count, milliseconds: 2000)
  }

  func stop() {
    stopFlag.pointee.store(1, ordering: .relaxed)
    _ = running.wait(forTotal: 2 * cpus.count, milliseconds: 2000)
  }

  private static let spin: CallFunction = { info in
    let control = info!.assumingMemoryBound(to: UnsafeMutableRawPointer.self)
    let stop = control[0].assumingMemoryBound(to: Atomic<Int>.self)
    countOnThisCPU(control[1])
    while stop.pointee.load(ordering: .relaxed) == 0 { CPUInstructions.pause() }
    countOnThisCPU(control[1])
  }
}

/// Every online CPU calls every other in turn (waiting single calls) for 200 ms; the
/// figure is the total calls per second, one sample per boot.
enum AllToAll {
  static let durationNanoseconds: UInt64 = 200_000_000

  static func run() {
    let calls = CPUCounters()
    let finished = CPUCounters()
    let control = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: 2)
    control[0] = calls.info
    control[1] = finished.info
    let start = CPUInstructions.readTSC()
    for cpu in IPISuite.others { Idle.post(work, UnsafeMutableRawPointer(control), to: cpu.rawValue) }
    work(UnsafeMutableRawPointer(control))
    _ = finished.wait(forTotal: CPUs.online.count, milliseconds: 5000)
    let elapsed = Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start)
    log("bench calls_per_second_all_to_all calls/s \(UInt64(calls.total) * 1_000_000_000 / max(elapsed, 1))")
    log(
      "bench-note calls_per_second_all_to_all: every CPU makes waiting single calls to every other, round robin, for 200 ms"
    )
  }

  private static let work: CallFunction = { info in
    let control = info!.assumingMemoryBound(to: UnsafeMutableRawPointer.self)
    let me = X86_64Platform.currentCPU
    let online = Array(CPUs.online.filter { $0 != me })
    let end = Clock.nanoseconds() + durationNanoseconds
    var next = 0
    while Clock.nanoseconds() < end {
      try? SMP.calls.callSingle(on: online[next % online.count], countOnThisCPU, control[0], wait: true)
      next += 1
    }
    countOnThisCPU(control[1])
  }
}
