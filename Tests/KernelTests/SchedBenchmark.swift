import Synchronization

/// `bench`: the scheduler's figures. `ctx_switch`: two threads on CPU 0 hand a
/// completion back and forth, half a round trip per sample. `wake_idle`: CPU 0
/// completes a completion that a thread on an idle CPU waits for; the sample ends when
/// that thread runs. `wake_busy`: the same with the woken thread in the stopper class
/// and the target CPU running a normal thread that spins with interrupts on: the
/// preemption latency. `idle_poll_share`: with halt-polling on, the share of 200 ms
/// that idle APs spent polling while nothing called them, per mille.
enum SchedBenchmark {
  static let samples = 200
  static var scheduler: Scheduler<X86_64Platform> { Threads.scheduler }

  /// What the two sides of a measurement share.
  final class Exchange {
    let go = Completion<X86_64Platform>()
    let back = Completion<X86_64Platform>()
    let ranAt = Atomic<UInt64>(0)
    let rounds: Int
    init(rounds: Int) { self.rounds = rounds }
    var info: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
    static func from(_ info: UnsafeMutableRawPointer?) -> Exchange {
      Unmanaged<Exchange>.fromOpaque(info!).takeUnretainedValue()
    }
  }

  /// The woken side: waits, stamps the TSC, answers; `rounds` times.
  private static let answer: CallFunction = { info in
    let exchange = Exchange.from(info)
    for _ in 0..<exchange.rounds {
      exchange.go.wait(in: scheduler)
      exchange.ranAt.store(CPUInstructions.readTSC(), ordering: .relaxed)
      exchange.back.complete(in: scheduler)
    }
  }

  static func run() {
    contextSwitch()
    guard let partner = CPUs.online.first(where: { $0 != X86_64Platform.currentCPU }) else { return }
    wakeUp(partner, busy: false)
    wakeUp(partner, busy: true)
    callPolled(partner)
    pollShare()
    log(
      "bench-note ctx_switch: two normal threads on CPU 0 handing a completion back and forth; wake_idle: a normal thread on idle CPU \(partner.rawValue), woken from CPU 0; wake_busy: a stopper-class thread woken onto CPU \(partner.rawValue) while a normal thread spins there with interrupts on (preemption latency); call_single_polled_idle: call_single_idle with the target polling up to 200 us before it halts; idle_poll_share: per mille of 200 ms idle APs spent polling (idle_poll_us=200)"
    )
  }

  /// Rounds between CPU 0's main thread and a thread on CPU 0: two switches a round.
  private static func contextSwitch() {
    let exchange = Exchange(rounds: samples)
    let me = X86_64Platform.currentCPU
    Threads.start(
      Threads.create(
        ThreadName("bench-switch", me.rawValue), on: me, function: answer, argument: exchange.info))
    var line = BenchLine("ctx_switch", unit: "ns")
    for _ in 0..<samples {
      let start = CPUInstructions.readTSC()
      exchange.go.complete(in: scheduler)
      guard exchange.back.wait(in: scheduler, timeoutNanoseconds: 1_000_000_000) else {
        log("bench: the switch partner on CPU \(me) did not answer within 1 s; no more switch samples")
        break
      }
      line.add(Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start) / 2)
    }
    line.flush()
  }

  /// Wake-ups of a thread on `partner`, idle or busy with a spinning normal thread.
  private static func wakeUp(_ partner: CPUIndex, busy: Bool) {
    let spinner = busy ? Spinner(on: partner) : nil
    let exchange = Exchange(rounds: samples)
    Threads.start(
      Threads.create(
        ThreadName("bench-wake", partner.rawValue), priority: busy ? .stopper : .normal, on: partner,
        function: answer, argument: exchange.info))
    var line = BenchLine("wake", suffix: busy ? "busy" : "idle", unit: "ns")
    for _ in 0..<samples {
      let start = CPUInstructions.readTSC()
      exchange.go.complete(in: scheduler)
      guard exchange.back.wait(in: scheduler, timeoutNanoseconds: 1_000_000_000) else {
        log("bench: wake-up of CPU \(partner) not answered within 1 s; no more wake samples")
        break
      }
      line.add(Clock.ticksToNanoseconds(exchange.ranAt.load(ordering: .relaxed) &- start))
    }
    line.flush()
    spinner?.stop()
  }

  private static let nothing: CallFunction = { _ in }

  /// `call_single_polled_idle`: waiting single calls to an idle CPU whose idle loop
  /// polls (up to 200 us) before it halts; compare with `call_single_idle` (polling
  /// off) of the same boot. The first calls let the polling window grow.
  private static func callPolled(_ partner: CPUIndex) {
    let saved = Idle.pollMaximumNanoseconds
    Idle.pollMaximumNanoseconds = 200_000
    defer { Idle.pollMaximumNanoseconds = saved }
    var line = BenchLine("call_single_polled", suffix: "idle", unit: "ns")
    for round in 0..<(samples + 20) {
      let start = CPUInstructions.readTSC()
      guard (try? X86_64Platform.calls.callSingle(on: partner, nothing, nil, wait: true)) != nil else {
        log("bench: call to CPU \(partner) refused; no more polled samples")
        break
      }
      if round >= 20 { line.add(Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start)) }
    }
    line.flush()
  }

  /// Idle APs' polling share over 200 ms in which nothing calls them, polling allowed.
  private static func pollShare() {
    let saved = Idle.pollMaximumNanoseconds
    Idle.pollMaximumNanoseconds = 200_000
    defer { Idle.pollMaximumNanoseconds = saved }
    let aps = CPUs.online.filter { $0 != X86_64Platform.currentCPU }
    let before = aps.reduce(UInt64(0)) {
      $0 + PerCPU.block($1).pointee.idlePollNanoseconds.load(ordering: .relaxed)
    }
    let start = Clock.nanoseconds()
    scheduler.sleep(nanoseconds: 200_000_000)
    let elapsed = Clock.nanoseconds() - start
    let after = aps.reduce(UInt64(0)) {
      $0 + PerCPU.block($1).pointee.idlePollNanoseconds.load(ordering: .relaxed)
    }
    log("bench idle_poll_share permille \((after - before) * 1000 / (elapsed * UInt64(aps.count)))")
  }

  /// A normal thread spinning on a CPU with interrupts on until stopped.
  final class Spinner {
    let stopFlag = Atomic<Bool>(false)
    let stopped = Completion<X86_64Platform>()

    init(on cpu: CPUIndex) {
      Threads.start(
        Threads.create(
          ThreadName("bench-spin", cpu.rawValue), on: cpu, function: Self.spin,
          argument: Unmanaged.passUnretained(self).toOpaque()))
    }

    private static let spin: CallFunction = { info in
      let spinner = Unmanaged<Spinner>.fromOpaque(info!).takeUnretainedValue()
      let start = Clock.nanoseconds()
      // Bounded: a benchmark that lost track of it must not leave a CPU spinning.
      while !spinner.stopFlag.load(ordering: .acquiring) && Clock.nanoseconds() - start < 30_000_000_000 {
        CPUInstructions.pause()
      }
      spinner.stopped.complete(in: Threads.scheduler)
    }

    /// Stops the spinner and waits (bounded) for it to end.
    func stop() {
      stopFlag.store(true, ordering: .releasing)  // pairs with the spinner's acquire
      if !stopped.wait(in: Threads.scheduler, timeoutNanoseconds: 1_000_000_000) {
        log("bench: a spinner did not stop within 1 s")
      }
    }
  }
}
