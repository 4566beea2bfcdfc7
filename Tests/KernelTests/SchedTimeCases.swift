import Synchronization

/// The `sched` suite's cases about time: per-CPU timers of several sleepers, timeouts,
/// and the tick that makes normal threads on one CPU take turns.
enum SchedTimeCases {
  static var scheduler: Scheduler<X86_64Platform> { Threads.scheduler }

  /// Sleep lengths in milliseconds, started in this order on one CPU.
  static let sleeps: [UInt64] = [30, 10, 50, 20, 60, 40]

  final class Sleepers {
    let woke = Atomic<Int>(0)
    let allAwake = Completion<X86_64Platform>()
    /// Wake-up rank and deadline of each sleeper, by its index in `sleeps`.
    let rank = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 6)
    let deadline = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: 6)
    let index = Atomic<Int>(0)
    init() {
      for slot in 0..<6 {
        (rank + slot).initialize(to: Atomic<Int>(-1))
        (deadline + slot).initialize(to: Atomic<UInt64>(0))
      }
    }
    deinit {
      rank.deallocate()
      deadline.deallocate()
    }
    var info: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
  }

  private static let sleeper: CallFunction = { info in
    let sleepers = Unmanaged<Sleepers>.fromOpaque(info!).takeUnretainedValue()
    let me = sleepers.index.wrappingAdd(1, ordering: .relaxed).oldValue
    // The deadline, not the length, orders the wake-ups: the sleepers start one after
    // another (milliseconds apart under nested KVM).
    let deadline = Clock.nanoseconds() + sleeps[me] * 1_000_000
    sleepers.deadline[me].store(deadline, ordering: .relaxed)
    _ = scheduler.sleep(until: deadline, unless: { false })
    let order = sleepers.woke.wrappingAdd(1, ordering: .relaxed).oldValue
    sleepers.rank[me].store(order, ordering: .relaxed)
    if order == sleeps.count - 1 { sleepers.allAwake.complete(in: scheduler) }
  }

  /// Six threads on one CPU sleep for different times through its one hardware timer:
  /// each wakes, none is lost, and they wake in the order of their deadlines (which,
  /// started 0-10 ms apart, interleave with the lengths: 10 ms steps).
  static func sleepersWakeInDeadlineOrder() -> TestResult {
    let cpu = CPUs.online.reversed().first!
    let sleepers = Sleepers()
    for index in 0..<sleeps.count {
      // One at a time, so that `index` gives each its own sleep length.
      Threads.start(
        Threads.create(ThreadName("sleeper", index), on: cpu, function: sleeper, argument: sleepers.info))
    }
    guard sleepers.allAwake.wait(in: scheduler, timeoutNanoseconds: 2_000_000_000) else {
      return .fail(
        "only \(sleepers.woke.load(ordering: .relaxed)) of \(sleeps.count) sleepers on CPU \(cpu) woke within 2 s"
      )
    }
    let deadline = { (index: Int) in sleepers.deadline[index].load(ordering: .relaxed) }
    let byDeadline = (0..<sleeps.count).sorted { deadline($0) < deadline($1) }
    for (expected, index) in byDeadline.enumerated()
    where sleepers.rank[index].load(ordering: .relaxed) != expected {
      return .fail(
        "the \(sleeps[index]) ms sleeper woke \(sleepers.rank[index].load(ordering: .relaxed))th, expected \(expected)th by its deadline"
      )
    }
    return .pass
  }

  /// A wait with a timeout and no completion returns false after about the timeout;
  /// with the completion announced first it returns true at once.
  static func completionWaitTimesOut() -> TestResult {
    let completion = Completion<X86_64Platform>()
    let start = Clock.nanoseconds()
    guard !completion.wait(in: scheduler, timeoutNanoseconds: 20_000_000) else {
      return .fail("a wait on a completion nobody announced returned true")
    }
    let waited = Clock.nanoseconds() - start
    guard waited >= 20_000_000 else { return .fail("timed out after \(waited / 1000) us, before 20 ms") }
    completion.complete(in: scheduler)
    guard completion.wait(in: scheduler, timeoutNanoseconds: 20_000_000) else {
      return .fail("a wait after complete() timed out")
    }
    KTAP.diagnostic("a 20 ms timeout returned after \(waited / 1000) us")
    return .pass
  }

  final class Turns {
    let secondRan = Atomic<Bool>(false)
    let firstSawSecond = Atomic<Bool>(false)
    let done = Completion<X86_64Platform>()
    var info: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
  }

  private static let spinUntilTheOtherRuns: CallFunction = { info in
    let turns = Unmanaged<Turns>.fromOpaque(info!).takeUnretainedValue()
    let start = Clock.nanoseconds()
    while !turns.secondRan.load(ordering: .acquiring) && Clock.nanoseconds() - start < 2_000_000_000 {
      CPUInstructions.pause()
    }
    // Acquire pairs with the second thread's release: it ran while we spun.
    turns.firstSawSecond.store(turns.secondRan.load(ordering: .acquiring), ordering: .relaxed)
    turns.done.complete(in: scheduler)
  }

  private static let markRan: CallFunction = { info in
    let turns = Unmanaged<Turns>.fromOpaque(info!).takeUnretainedValue()
    turns.secondRan.store(true, ordering: .releasing)
  }

  /// Two normal threads on one CPU: the first spins (interrupts on) until the second
  /// has run. Only the tick can give the second the CPU; without it the first spins
  /// its whole 2 s bound.
  static func equalThreadsTakeTurns() -> TestResult {
    guard let cpu = CPUs.online.reversed().first(where: { $0 != X86_64Platform.currentCPU }) else {
      return .skip("one CPU online")
    }
    let turns = Turns()
    let start = Clock.nanoseconds()
    Threads.start(
      Threads.create(
        ThreadName("spin-first", cpu.rawValue), on: cpu, function: spinUntilTheOtherRuns, argument: turns.info
      ))
    Threads.start(
      Threads.create(ThreadName("run-second", cpu.rawValue), on: cpu, function: markRan, argument: turns.info)
    )
    guard turns.done.wait(in: scheduler, timeoutNanoseconds: 3_000_000_000) else {
      return .fail("the spinning thread on CPU \(cpu) did not end within 3 s")
    }
    guard turns.firstSawSecond.load(ordering: .relaxed) else {
      return .fail("the second thread on CPU \(cpu) did not run while the first spun for 2 s")
    }
    KTAP.diagnostic(
      "the second thread ran \((Clock.nanoseconds() - start) / 1000) us after both started (slice \(scheduler.timeSlice / 1000) us)"
    )
    return .pass
  }
}
