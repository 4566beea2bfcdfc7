import Synchronization

/// The race the seeds' history fixed in stop_two_cpus(): a pair queued while stop_cpus()
/// is queueing could land first on one CPU and second on the other while stop_cpus()'s
/// works land the other way round, and each CPU's stopper would wait in PREPARE for a
/// partner that is stuck behind the other stop. Every CPU calls stopTwoCPUs on random
/// pairs (three-way cycles possible at 3 CPUs and more) while a thread per CPU also
/// calls stopCPUs and stop_machine: no stop may hang, and the back-off must be seen.
enum StopRaceCase {
  final class Race {
    let stop = Atomic<Bool>(false)
    let pairs = Atomic<Int>(0)
    let wholeStops = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let seed: UInt64
    init(seed: UInt64) { self.seed = seed }
    var info: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
    static func from(_ info: UnsafeMutableRawPointer?) -> Race { Unmanaged<Race>.fromOpaque(info!).takeUnretainedValue() }
  }

  private static let nothing: StopFunction = { _ in 0 }

  /// How long the race runs at most, and the fewest retries it wants to see.
  static let boundNanoseconds: UInt64 = 30_000_000_000

  private static let pairCaller: CallFunction = { info in
    let race = Race.from(info)
    let stoppers = StopperThreads.stoppers
    let online = CPUs.online
    var random = TestRandom(seed: race.seed &+ UInt64(X86_64Platform.currentCPU.rawValue) &* 7919)
    while !race.stop.load(ordering: .relaxed) {
      let first = CPUIndex(random.below(online.count))
      var second = CPUIndex(random.below(online.count - 1))
      if second.rawValue >= first.rawValue { second = CPUIndex(second.rawValue + 1) }
      do throws(StopError) { try stoppers.stopTwoCPUs(first, second, nothing) } catch {
        race.errors.wrappingAdd(1, ordering: .relaxed)
      }
      race.pairs.wrappingAdd(1, ordering: .relaxed)
    }
  }

  private static let wholeCaller: CallFunction = { info in
    let race = Race.from(info)
    let stoppers = StopperThreads.stoppers
    var turn = 0
    while !race.stop.load(ordering: .relaxed) {
      turn += 1
      do throws(StopError) {
        if turn % 2 == 0 {
          try stoppers.stopCPUs(CPUs.online, nothing)
        } else {
          try stoppers.stopMachine(nothing)
        }
      } catch {
        race.errors.wrappingAdd(1, ordering: .relaxed)
      }
      race.wholeStops.wrappingAdd(1, ordering: .relaxed)
    }
  }

  /// Each CPU's stopper and running thread, for a report of a hang.
  static func describeStoppers() {
    let stoppers = StopperThreads.stoppers
    KTAP.diagnostic("stop queueing in progress: \(stoppers.queueingInProgress.load(ordering: .relaxed))")
    for cpu in CPUs.possible {
      let stopper = stoppers.stopper(cpu)
      let thread = stopper.pointee.thread!
      KTAP.diagnostic(
        "CPU \(cpu) (state \(Int(CPUs.state(of: cpu).rawValue))): running \(Threads.scheduler.run(cpu).pointee.current!.pointee.name); stopper state \(Int(thread.pointee.state.rawValue)) queued \(thread.pointee.isQueued) enabled \(stoppers.isEnabled(cpu)) parked \(stoppers.isParked(cpu)), \(stoppers.queuedWorks(on: cpu)) works, run queue \(Threads.scheduler.run(cpu).pointee.queue.count), last ack \(hex: stopper.pointee.lastAck.load(ordering: .relaxed)), napping \(stopper.pointee.napping.load(ordering: .relaxed)) quiet \(Int(stoppers.quietWaiters[cpu.rawValue].load(ordering: .relaxed))), stop #\(stoppers.lastStopGeneration), resched \(Threads.scheduler.run(cpu).pointee.needsReschedule.load(ordering: .relaxed)) preempt \(Threads.scheduler.run(cpu).pointee.preemptCount.load(ordering: .relaxed)) irqs \(PerCPU.block(cpu).pointee.interruptsTaken.load(ordering: .relaxed)) resched-irqs \(PerCPU.block(cpu).pointee.reschedules.load(ordering: .relaxed))"
      )
      if CPUs.state(of: cpu) == .online && cpu != X86_64Platform.currentCPU { X86_64Platform.showWhereStuck(cpu) }
    }
  }

  static func pairsAgainstStopCPUs() -> TestResult {
    let online = CPUs.online
    guard online.count > 1 else { return .skip("one CPU online: no pairs") }
    let stoppers = StopperThreads.stoppers
    let retriesBefore = stoppers.statistics.deadlockRetries.load(ordering: .relaxed)
    let race = Race(seed: CPUInstructions.readTSC())
    KTAP.diagnostic("seed \(race.seed)")
    let group = ThreadGroup(capacity: 2 * online.count)
    for cpu in online {
      group.start(ThreadName("stop-pairs", cpu.rawValue), on: cpu, pairCaller, race.info)
      group.start(ThreadName("stop-whole", cpu.rawValue), on: cpu, wholeCaller, race.info)
    }
    // Until the back-off has been taken a few times (and at least 2 s), at most 30 s.
    let start = Clock.nanoseconds()
    while true {
      Threads.scheduler.sleep(nanoseconds: 100_000_000)
      let elapsed = Clock.nanoseconds() - start
      let retries = stoppers.statistics.deadlockRetries.load(ordering: .relaxed) - retriesBefore
      if elapsed > boundNanoseconds || (elapsed > 2_000_000_000 && retries >= 3) { break }
    }
    race.stop.store(true, ordering: .relaxed)
    if let late = group.wait(milliseconds: 20_000) {
      _ = Unmanaged.passRetained(race)
      describeStoppers()
      return .fail("stop callers (a hang?): \(line: late)")
    }
    let retries = stoppers.statistics.deadlockRetries.load(ordering: .relaxed) - retriesBefore
    KTAP.diagnostic(
      "\(race.pairs.load(ordering: .relaxed)) stopTwoCPUs and \(race.wholeStops.load(ordering: .relaxed)) stopCPUs/stop_machine calls in \((Clock.nanoseconds() - start) / 1_000_000) ms; the pair back-off was taken \(retries) times"
    )
    guard race.errors.load(ordering: .relaxed) == 0 else { return .fail("\(race.errors.load(ordering: .relaxed)) stop calls failed") }
    guard retries > 0 else { return .fail("the stopTwoCPUs back-off was never taken: the race was not exercised") }
    return .pass
  }
}
