import Synchronization

/// One multi-CPU stop: the function, who runs it, and the state every taking-part CPU
/// moves through in step. Lives on the requester's stack.
/// Linux: struct multi_stop_data.
struct MultiStop: ~Copyable {
  let function: StopFunction
  let argument: UnsafeMutableRawPointer?
  /// CPUs that take part; the ack counter restarts at their number in every state.
  /// Linux: `num_threads`.
  let threadCount: Int
  /// The CPUs that run the function; nil: the first online CPU only.
  let active: CPUSet?
  /// The CPUs whose stoppers take part (for the PREPARE kick and the stall report).
  let participants: CPUSet
  /// This stop's number, and when it was called (`timestamp()`), for the trace.
  let generation: UInt64
  let called: UInt64
  /// The current `StopState`.
  let state = Atomic<UInt8>(StopState.none.rawValue)
  /// CPUs yet to acknowledge the current state.
  let acks = Atomic<Int>(0)
  /// Whether a stall in this stop has been reported (one CPU reports).
  let stallReported = Atomic<Bool>(false)

  init(
    function: StopFunction, argument: UnsafeMutableRawPointer?, threadCount: Int, active: CPUSet?,
    participants: CPUSet, generation: UInt64, called: UInt64
  ) {
    self.function = function
    self.argument = argument
    self.threadCount = threadCount
    self.active = active
    self.participants = participants
    self.generation = generation
    self.called = called
  }

  /// Resets the ack counter and publishes `newState`.
  /// Linux: set_state().
  func setState(_ newState: StopState) {
    acks.store(threadCount, ordering: .relaxed)
    // Release: the counter's reset is visible before anyone sees the new state and
    // acknowledges it; pairs with the acquire load in `multiCPUStop`. Linux: smp_wmb()
    // then WRITE_ONCE(state).
    state.store(newState.rawValue, ordering: .releasing)
  }

  var currentState: StopState {
    // Acquire pairs with the release in `setState`: the counter is reset, and what
    // every CPU did in the previous state (the function's effects) is visible.
    StopState(rawValue: state.load(ordering: .acquiring))!
  }
}

extension Stoppers {
  /// One CPU's part of a multi-CPU stop, run by its stopper (or directly, by
  /// `stopMachineFromInactiveCPU`): follow the state, acknowledge each change, turn
  /// interrupts off in DISABLE_IRQ, run the function in RUN if this CPU is active,
  /// restore interrupts on leaving. Returns the function's result (0 if it did not run).
  /// Linux: multi_cpu_stop().
  func multiCPUStop(_ stop: UnsafeMutablePointer<MultiStop>) -> Int32 {
    let cpu = Platform.currentCPU
    let me = stopper(cpu)
    // From `stopMachineFromInactiveCPU` interrupts may be off already: put them back
    // as they were, and never nap with them off.
    let interruptsWereOn = Platform.interruptsEnabled
    let isActive = stop.pointee.active.map { $0.contains(cpu) } ?? (cpu == Platform.onlineCPUs.first)
    var trace = StopTrace()
    trace.generation = stop.pointee.generation
    trace.called = stop.pointee.called
    trace.wasActive = isActive
    var current = StopState.none
    var saved: InterruptState? = nil
    var result: Int32 = 0
    var since = Platform.nanoseconds()
    var nextReport = stallReportNanoseconds
    repeat {
      if Platform.nanoseconds() &- since < spinBeforeWaitingNanoseconds {
        Platform.relax()
      } else {
        waitStep(stop, in: current, canNap: interruptsWereOn, napping: me)
      }
      let seen = stop.pointee.currentState
      if seen != current {
        current = seen
        trace.statesSeen += 1
        trace.record(current, at: Platform.timestamp())
        switch current {
        case .disableInterrupts:
          saved = Platform.saveAndDisableInterrupts()
        case .run:
          trace.interruptsOffInRun = !Platform.interruptsEnabled
          if isActive { result = stop.pointee.function(stop.pointee.argument) }
        default:
          break
        }
        me.pointee.lastAck.store(stop.pointee.generation << 8 | UInt64(current.rawValue), ordering: .relaxed)
        acknowledge(stop, current)
        since = Platform.nanoseconds()
        nextReport = stallReportNanoseconds
      } else {
        let waited = Platform.nanoseconds() &- since
        if waited > nextReport {
          reportStall(stop, in: current, waited: waited, panicking: waited > stallPanicNanoseconds)
          nextReport = waited * 2
        }
      }
    } while current != .exit
    trace.left = Platform.timestamp()
    record(trace)
    if let saved { Platform.restoreInterrupts(saved) }
    return result
  }

  /// The last CPU to acknowledge a state moves everyone to the next, and wakes the CPUs
  /// that wait for it.
  /// Linux: ack_state().
  private func acknowledge(_ stop: UnsafeMutablePointer<MultiStop>, _ state: StopState) {
    // Acquire and release: the last acknowledger sees what every CPU did in this state
    // before it publishes the next (release in `setState`), so all of it is visible to
    // every CPU that sees the next state.
    guard stop.pointee.acks.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 else { return }
    // EXIT is the last state: its acknowledgements move nobody on. Linux stores a state
    // past EXIT that no CPU reads; there is no such StopState.
    guard let next = StopState(rawValue: state.rawValue + 1) else { return }
    stop.pointee.setState(next)
    wakeWaiters(of: stop)
  }

  /// Between two looks at the state: a CPU that has acknowledged the current state
  /// waits for the next without holding a core it does not need. With interrupts on
  /// (PREPARE, in a stopper) it naps in `waitForInterrupt`, woken by a reschedule IPI;
  /// with them off (every later state, or a caller that had them off) in
  /// `waitWithInterruptsOff`, woken by an NMI on x86-64. On a machine with more vCPUs
  /// than host cores, the CPUs already waiting leave the cores to those still on their
  /// way; spinning, they held them (8 vCPUs on 2 cores: ~100 ms per stop).
  /// Linux: stop_machine_yield() (cpu_relax()).
  private func waitStep(
    _ stop: UnsafeMutablePointer<MultiStop>, in state: StopState, canNap: Bool,
    napping me: UnsafeMutablePointer<CPUStopper<Platform>>
  ) {
    guard state != .none else {
      Platform.relax()
      return
    }
    if state == .prepare && canNap {
      let interrupts = Platform.saveAndDisableInterrupts()
      // Sequentially consistent, with the state store and flag load in `wakeWaiters`:
      // of "we announce the nap, then look at the state" and "the last CPU publishes
      // the state, then looks for nappers", at least one sees the other's store.
      me.pointee.napping.store(true, ordering: .sequentiallyConsistent)
      if stop.pointee.state.load(ordering: .sequentiallyConsistent) == state.rawValue {
        Platform.waitForInterrupt(atMost: prepareNapNanoseconds)  // returns with interrupts on
      }
      me.pointee.napping.store(false, ordering: .relaxed)
      Platform.restoreInterrupts(interrupts)
      return
    }
    let flag = quietWaiters + Platform.currentCPU.rawValue
    // Sequentially consistent: the same pairing as the nap above.
    flag.pointee.store(1, ordering: .sequentiallyConsistent)
    if stop.pointee.state.load(ordering: .sequentiallyConsistent) == state.rawValue {
      Platform.waitWithInterruptsOff(whileNonZero: UnsafeRawPointer(flag))
    }
    flag.pointee.store(0, ordering: .relaxed)
  }

  /// Wakes the taking-part CPUs that wait for the next state. After `setState`.
  private func wakeWaiters(of stop: UnsafeMutablePointer<MultiStop>) {
    atomicMemoryFence(ordering: .sequentiallyConsistent)  // see `waitStep`
    let me = Platform.currentCPU
    for cpu in stop.pointee.participants where cpu != me {
      if stopper(cpu).pointee.napping.load(ordering: .sequentiallyConsistent) {
        Platform.sendReschedule(to: cpu)
      }
      // One wake-up per wait: whoever clears the flag sends it.
      let flag = quietWaiters + cpu.rawValue
      if flag.pointee.compareExchange(expected: 1, desired: 0, ordering: .sequentiallyConsistent).exchanged {
        Platform.endWaitWithInterruptsOff(on: cpu)
      }
    }
  }

  /// Says which CPUs have not acknowledged `state` after `waited` nanoseconds, once
  /// per stop and bound (the first CPU to see it reports); panics past the last bound.
  private func reportStall(
    _ stop: UnsafeMutablePointer<MultiStop>, in state: StopState, waited: UInt64, panicking: Bool
  ) {
    if !panicking && stop.pointee.stallReported.exchange(true, ordering: .relaxed) { return }
    if !panicking { statistics.stalls.wrappingAdd(1, ordering: .relaxed) }
    var line: LogLine = "stop: CPU "
    line.append(decimal: Platform.currentCPU.rawValue)
    line.append(" waited ")
    // Microseconds below 10 ms, so a small `stop_timeout_ms` does not report "0 ms".
    line.append(decimal: Int(waited < 10_000_000 ? waited / 1000 : waited / 1_000_000))
    line.append(waited < 10_000_000 ? " us in " : " ms in ")
    line.append(state.name)
    line.append(" of stop #")
    line.append(decimal: Int(stop.pointee.generation))
    line.append(" for CPUs ")
    var first = true
    for cpu in stop.pointee.participants {
      // A CPU has acknowledged `state` once its last acknowledgement is of this stop
      // and of `state` or later. One whose last is of another stop is stuck in it
      // (two stops queued in opposite orders): say which.
      let ack = stopper(cpu).pointee.lastAck.load(ordering: .relaxed)
      let inThisStop = ack >> 8 == stop.pointee.generation
      guard !inThisStop || ack & 0xFF < UInt64(state.rawValue) else { continue }
      if !first { line.append(",") }
      line.append(decimal: cpu.rawValue)
      if !inThisStop {
        line.append(" (last seen in stop #")
        line.append(decimal: Int(ack >> 8))
        line.append(")")
      }
      first = false
    }
    line.append(" (")
    line.append(decimal: stop.pointee.acks.load(ordering: .relaxed))
    line.append(" of ")
    line.append(decimal: stop.pointee.threadCount)
    line.append(" not acknowledged)")
    if panicking { Platform.panic(line) }
    Platform.log(line)
    for cpu in stop.pointee.participants {
      let ack = stopper(cpu).pointee.lastAck.load(ordering: .relaxed)
      if ack >> 8 != stop.pointee.generation || ack & 0xFF < UInt64(state.rawValue) { Platform.showWhereStuck(cpu) }
    }
  }
}
