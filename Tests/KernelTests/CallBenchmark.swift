import Synchronization

/// Cross-call figures for `make bench`, each measured twice: with the target CPUs idle
/// in `hlt`, and busy (spinning in thread context with interrupts on). Printed as
/// `bench <metric> ns <samples...>`. Their floors are measured in the same boot: the
/// bare IPI round trip (`ipi_rtt_idle`, `ipi_rtt_busy`, by `IPIFloor`) for the call
/// figures, and the cache line (`cacheline_rtt`, by `CacheLinePingPong`).
enum CallBenchmark {
  static let singleSamples = 200
  static let othersSamples = 50

  static func run() {
    let others = IPISuite.others
    guard let partner = others.first else { return }
    IPIFloor.arm()
    for busy in [false, true] {
      let spinners = busy ? BusyCPUs(others) : nil
      let suffix: StaticString = busy ? "busy" : "idle"
      measure("ipi_rtt", suffix, singleSamples) { IPIFloor.roundTrip(to: partner) }
      measure("call_single", suffix, singleSamples) { waitingSingle(to: partner) }
      measure("async_latency", suffix, singleSamples) { asyncLatency(to: partner) }
      measure("call_others", suffix, othersSamples) { waitingOthers() }
      spinners?.stop()
    }
    IPIFloor.disarm()
    log(
      "bench-note call_*_idle: targets idle in hlt; call_*_busy: targets spinning with interrupts on; caller is CPU 0"
    )
    log(
      "bench-note ipi_rtt_*: IPI floor, CPU 0 pings CPU \(partner.rawValue) with a bare IPI whose handler only sends one back; caller waits as a waiting call does (spin 20 us, then hlt); call_*_busy/idle are divided by the ipi_rtt of the same state"
    )
    AllToAll.run()
  }

  /// Prints `samples` results of `sample()` as `bench <name>_<suffix> ns ...`. A
  /// sample that fails (nil) is left out and counted; the count is reported.
  private static func measure(
    _ name: StaticString, _ suffix: StaticString, _ samples: Int, _ sample: () -> UInt64?
  ) {
    var line = BenchLine(name, suffix: suffix, unit: "ns")
    var failed = 0
    for _ in 0..<samples {
      if let value = sample() { line.add(value) } else { failed += 1 }
    }
    line.flush()
    if failed > 0 {
      log("bench: \(name)_\(suffix): \(failed) of \(samples) samples failed and were left out")
    }
  }

  /// A waiting single call's round trip; nil if the call was refused.
  private static func waitingSingle(to cpu: CPUIndex) -> UInt64? {
    let start = CPUInstructions.readTSC()
    do {
      try X86_64Platform.calls.callSingle(on: cpu, { _ in }, nil, wait: true)
    } catch {
      return nil
    }
    return Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start)
  }

  private static func waitingOthers() -> UInt64? {
    let start = CPUInstructions.readTSC()
    X86_64Platform.calls.callOthers({ _ in }, nil, wait: true)
    return Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start)
  }

  /// From just before the async call is queued to the moment its function starts; nil
  /// if the call was refused or did not run within 1 s (then its record and stamp are
  /// left allocated: the call may still be in flight and write them).
  private static func asyncLatency(to cpu: CPUIndex) -> UInt64? {
    let stamp = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: 1)
    stamp.initialize(to: Atomic<UInt64>(0))
    let record = OwnedRecord(stampTSC, UnsafeMutableRawPointer(stamp))
    let start = CPUInstructions.readTSC()
    do {
      try X86_64Platform.calls.callSingleAsync(on: cpu, record.pointer)
    } catch {
      stamp.deallocate()
      return nil
    }
    guard waitUntil(milliseconds: 1000, { !record.pointer.pointee.isLocked }) else {
      record.leak()
      return nil
    }
    let ran = stamp.pointee.load(ordering: .relaxed)
    stamp.deallocate()
    return Clock.ticksToNanoseconds(ran &- start)
  }

  private static let stampTSC: CallFunction = { info in
    info!.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.store(
      CPUInstructions.readTSC(), ordering: .relaxed)
  }
}

/// Keeps CPUs busy in thread context, interrupts on, until stopped: one thread on
/// each (`bench-spin/N`) spinning on a flag.
final class BusyCPUs {
  private let stopFlag = Atomic<Int>(0)
  private let running = CPUCounters()
  private let cpus: CPUSet
  private let group: ThreadGroup
  private let control = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: 2)

  /// Starts the spinners; says so if some did not start within 2 s (their figures are
  /// then partly "idle", and the log shows it).
  init(_ cpus: CPUSet) {
    self.cpus = cpus
    group = ThreadGroup(capacity: cpus.count)
    control[0] = Unmanaged.passUnretained(self).toOpaque()
    control[1] = running.info
    for cpu in cpus { group.start(ThreadName("bench-spin", cpu.rawValue), on: cpu, BusyCPUs.spin, control) }
    if !running.wait(forTotal: cpus.count, milliseconds: 2000) {
      log("bench: only \(running.total) of \(cpus.count) CPUs started spinning within 2 s")
    }
  }

  deinit { control.deallocate() }

  /// Stops the spinners and waits (2 s at most) for their threads to end; if some did
  /// not, says which and leaks what they still read.
  func stop() {
    stopFlag.store(1, ordering: .relaxed)
    if let late = group.wait(milliseconds: 2000) {
      _ = Unmanaged.passRetained(self)
      log("bench: spinners, bound 2 s: \(line: late); their control block leaked")
    }
  }

  private static let spin: CallFunction = { info in
    let control = info!.assumingMemoryBound(to: UnsafeMutableRawPointer.self)
    let busy = Unmanaged<BusyCPUs>.fromOpaque(control[0]).takeUnretainedValue()
    countOnThisCPU(control[1])
    while busy.stopFlag.load(ordering: .relaxed) == 0 { CPUInstructions.pause() }
  }
}

/// Every online CPU calls every other in turn (waiting single calls) for 200 ms; the
/// figure is the total calls per second, one sample per boot. Printed only if every CPU
/// finished and no call was refused.
enum AllToAll {
  static let durationNanoseconds: UInt64 = 200_000_000

  static func run() {
    let calls = CPUCounters()
    let refused = CPUCounters()
    let control = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: 2)
    control[0] = calls.info
    control[1] = refused.info
    let group = ThreadGroup(capacity: CPUs.online.count)
    let start = CPUInstructions.readTSC()
    for cpu in IPISuite.others { group.start(ThreadName("bench-all", cpu.rawValue), on: cpu, work, control) }
    work(UnsafeMutableRawPointer(control))
    if let late = group.wait(milliseconds: 5000) {
      _ = Unmanaged.passRetained(calls)  // the stragglers still count into these
      _ = Unmanaged.passRetained(refused)
      log("bench: all-to-all, bound 5 s: \(line: late); no figure")
      return  // control stays allocated: the stragglers still read it
    }
    let elapsed = Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start)
    control.deallocate()
    guard refused.total == 0 else {
      log("bench: all-to-all: \(refused.total) calls refused; no figure")
      return
    }
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
      do throws(CrossCallError) {
        try X86_64Platform.calls.callSingle(
          on: online[next % online.count], countOnThisCPU, control[0], wait: true)
      } catch {
        countOnThisCPU(control[1])
      }
      next += 1
    }
  }
}
