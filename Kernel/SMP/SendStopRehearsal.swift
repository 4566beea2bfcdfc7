import Synchronization

/// Rehearsing `smp_send_stop` for the benchmarks: a stop is final, so `make bench` runs
/// its path up to every acknowledgement many times and lets the CPUs go after each.
extension SendStop {
  /// Benchmark only: the stop's whole path up to the acknowledgements, but CPUs that
  /// are not running are only looked at, not claimed, nothing is logged, and a stopped
  /// CPU waits for `endRehearsal` instead of halting for good, then returns to what it
  /// was doing. Call with interrupts off, then `endRehearsal` once done with the outcome.
  ///
  /// A stopped CPU waits as a real stop's would halt, without holding its core
  /// (`waitWithInterruptsOff`): waiters that spin took the host's cores from the CPUs
  /// still to be stopped (measured at 8 vCPUs on two cores: 16-17 ms a rehearsal to idle
  /// CPUs; ~0.1 ms with CPUs that return at once, which still overstates a stop of busy
  /// CPUs: theirs spin again at once).
  public func rehearse(_ reason: SendStopReason) -> SendStopOutcome? {
    run(reason, rehearsal: true, caller: Platform.currentCPU)
  }

  /// Ends a rehearsal: no stop in progress, a new generation (an acknowledgement of
  /// this rehearsal that comes late counts for nothing), the waiting CPUs woken, and
  /// the claim released.
  public func endRehearsal() {
    precondition(isRehearsal, "endRehearsal without a rehearsal")
    for cpu in 0..<cpuCount { records[cpu].nmiRequested.store(false, ordering: .relaxed) }
    finished.store(false, ordering: .relaxed)
    inProgress.store(false, ordering: .sequentiallyConsistent)
    // Sequentially consistent: the flag is down before the new generation shows (pairs
    // with the acquire in `enter`), and against a waiter's flag store then look at the
    // generation in `acknowledgeRehearsal`: either it sees the new generation, or this
    // sees its flag and wakes it.
    generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
    for cpu in 0..<cpuCount
    where rehearsalWaiters[cpu].compareExchange(expected: 1, desired: 0, ordering: .sequentiallyConsistent).exchanged {
      Platform.endWaitWithInterruptsOff(on: CPUIndex(cpu))
    }
    rehearsing.store(false, ordering: .relaxed)
    owner.store(0, ordering: .releasing)
  }

  /// Whether the stop in progress is a rehearsal.
  public var isRehearsal: Bool { rehearsing.load(ordering: .relaxed) }

  /// For a CPU stopped by a rehearsal: acknowledges, then waits with interrupts off
  /// until the rehearsal ends (at most 5 s), and returns. A CPU stopped by NMI returns
  /// at once: it was spinning with interrupts off, and goes back to it.
  public func acknowledgeRehearsal(_ cpu: CPUIndex, _ mechanism: StopMechanism) {
    let mine = records[cpu.rawValue].entered.load(ordering: .relaxed) &- 1
    acknowledge(cpu, mechanism)
    guard mechanism == .vector else { return }
    let flag = rehearsalWaiters + cpu.rawValue
    let start = Platform.nanoseconds()
    while generation.load(ordering: .sequentiallyConsistent) & 0xFF_FFFF == mine
      && Platform.nanoseconds() &- start < 5_000_000_000
    {
      // Sequentially consistent: see `endRehearsal`.
      flag.pointee.store(1, ordering: .sequentiallyConsistent)
      if generation.load(ordering: .sequentiallyConsistent) & 0xFF_FFFF == mine {
        Platform.waitWithInterruptsOff(whileNonZero: UnsafeRawPointer(flag))
      }
      flag.pointee.store(0, ordering: .relaxed)
    }
  }
}
