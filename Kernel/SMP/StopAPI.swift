import Synchronization

/// The stop API, with Linux's semantics (kernel/stop_machine.c). Every call that waits
/// is for thread context: it sleeps until the works it queued have finished.
extension Stoppers {
  /// Runs `function(argument)` on `cpu` in its stopper: the highest class, preemption
  /// off, taking the CPU from anything running there; returns once it returned. On the
  /// caller's own CPU the stopper preempts the caller at once, so there is no sleep.
  /// `cpu` is not kept online meanwhile: if it goes down after the queueing, the
  /// function still runs (the stopper drains before it parks).
  /// Linux: stop_one_cpu().
  /// - Throws: `.notFound` if the function did not run because `cpu` is not online
  ///   (its stopper is parked or never started); `.failed(code)` for its non-zero
  ///   result; `.invalidCPU` for a CPU number out of range.
  public func stopOneCPU(
    _ cpu: CPUIndex, _ function: StopFunction, _ argument: UnsafeMutableRawPointer? = nil
  ) throws(StopError) {
    guard isValid(cpu) else { throw .invalidCPU(cpu) }
    var done = StopDone<Platform>(works: 1)
    let result = withUnsafeMutablePointer(to: &done) { done -> Int32? in
      var work = StopWork<Platform>(job: .function(function, argument), done: done)
      return withUnsafeMutablePointer(to: &work) { work -> Int32? in
        guard queue(work, on: cpu) else { return nil }
        done.pointee.wait(in: scheduler)
        return done.pointee.result
      }
    }
    guard let result else { throw .notFound }
    if result != 0 { throw .failed(result) }
  }

  /// Queues `function(argument)` on `cpu`'s stopper in the caller's `work` buffer and
  /// returns at once. Returns true if it was queued: then it will run. The buffer must
  /// stay untouched until it is free again (`work.pointee.isBusy` false). Any context
  /// but NMI.
  /// Linux: stop_one_cpu_nowait().
  public func stopOneCPUNoWait(
    _ cpu: CPUIndex, _ function: StopFunction, _ argument: UnsafeMutableRawPointer?,
    work: UnsafeMutablePointer<StopWork<Platform>>
  ) -> Bool {
    guard isValid(cpu) else { return false }
    precondition(!work.pointee.isBusy, "stopOneCPUNoWait: the work buffer is still queued or running")
    work.pointee.job = .function(function, argument)
    work.pointee.done = nil
    return queue(work, on: cpu)
  }

  /// Stops `cpu1` and `cpu2` together, in lockstep, and runs `function(argument)` on
  /// `cpu1` with interrupts off on both; returns when both are done. Backs off and
  /// retries while `stopCPUs` is queueing (counted in `statistics.deadlockRetries`).
  /// Linux: stop_two_cpus().
  /// - Throws: `.notFound` if either CPU is not online (nothing ran); `.failed(code)`;
  ///   `.invalidCPU` for a number out of range or the same CPU twice.
  public func stopTwoCPUs(
    _ cpu1: CPUIndex, _ cpu2: CPUIndex, _ function: StopFunction, _ argument: UnsafeMutableRawPointer? = nil
  ) throws(StopError) {
    guard isValid(cpu1) else { throw .invalidCPU(cpu1) }
    guard isValid(cpu2), cpu2 != cpu1 else { throw .invalidCPU(cpu2) }
    var stop = MultiStop(
      function: function, argument: argument, threadCount: 2, active: CPUSet([cpu1]),
      participants: CPUSet([cpu1, cpu2]), generation: stopsStarted.add(1, ordering: .relaxed).newValue,
      called: Platform.timestamp())
    var done = StopDone<Platform>(works: 2)
    let low = cpu1.rawValue < cpu2.rawValue ? cpu1 : cpu2
    let high = cpu1.rawValue < cpu2.rawValue ? cpu2 : cpu1
    let result = withUnsafeMutablePointer(to: &stop) { stop -> Int32? in
      stop.pointee.setState(.prepare)
      return withUnsafeMutablePointer(to: &done) { done -> Int32? in
        var work1 = StopWork<Platform>(job: .multiStop(UnsafeMutableRawPointer(stop)), done: done)
        var work2 = StopWork<Platform>(job: .multiStop(UnsafeMutableRawPointer(stop)), done: done)
        return withUnsafeMutablePointer(to: &work1) { work1 in
          withUnsafeMutablePointer(to: &work2) { work2 -> Int32? in
            guard queueTwo(work1, on: low, work2, on: high) else { return nil }
            done.pointee.wait(in: scheduler)
            return done.pointee.result
          }
        }
      }
    }
    guard let result else { throw .notFound }
    if result != 0 { throw .failed(result) }
  }

  /// Runs `function(argument)` on every online CPU of `cpus`, each in its stopper,
  /// all queued before any can finish; returns when all have returned. Serialised with
  /// every other `stopCPUs` and `stopMachine`, so a function may wait for the others
  /// to start.
  /// Linux: stop_cpus().
  /// - Throws: `.notFound` if no CPU of `cpus` was online (nothing ran);
  ///   `.failed(code)` with the first non-zero result.
  public func stopCPUs(
    _ cpus: CPUSet, _ function: StopFunction, _ argument: UnsafeMutableRawPointer? = nil
  ) throws(StopError) {
    stopMutex.lock(in: scheduler)
    defer { stopMutex.unlock(in: scheduler) }
    try stopCPUsLocked(cpus, job: .function(function, argument))
  }

  /// `stopCPUs`, unless another stop holds the stop mutex: then `.again` at once.
  /// Linux: try_stop_cpus().
  public func tryStopCPUs(
    _ cpus: CPUSet, _ function: StopFunction, _ argument: UnsafeMutableRawPointer? = nil
  ) throws(StopError) {
    guard stopMutex.tryLock(in: scheduler) else { throw .again }
    defer { stopMutex.unlock(in: scheduler) }
    try stopCPUsLocked(cpus, job: .function(function, argument))
  }

  /// Queues `job` on every CPU of `cpus` and waits.
  /// Linux: __stop_cpus().
  private func stopCPUsLocked(_ cpus: CPUSet, job: StopJob) throws(StopError) {
    var valid = CPUSet()
    for cpu in cpus where isValid(cpu) { valid.insert(cpu) }
    var done = StopDone<Platform>(works: valid.count)
    let result = withUnsafeMutablePointer(to: &done) { done -> Int32? in
      guard queueStopWorks(on: valid, job: job, done: done) else { return nil }
      done.pointee.wait(in: scheduler)
      return done.pointee.result
    }
    guard let result else { throw .notFound }
    if result != 0 { throw .failed(result) }
  }

  /// Stops every online CPU in lockstep and runs `function(argument)` with interrupts
  /// off everywhere: on the CPUs of `cpus`, or on the first online CPU if nil. No CPU
  /// runs anything else from DISABLE_IRQ to EXIT, not even a queued cross-call. Holds
  /// the hotplug lock throughout, so the CPUs taking part stay online. Before the
  /// stoppers run (early boot) it runs the function right here with interrupts off.
  /// Linux: stop_machine().
  /// - Throws: `.failed(code)` with the first non-zero result.
  public func stopMachine(
    _ function: StopFunction, _ argument: UnsafeMutableRawPointer? = nil, cpus: CPUSet? = nil
  ) throws(StopError) {
    guard isReady else {
      try stopMachineCPUsLocked(function, argument, cpus: cpus)
      return
    }
    hotplugLock.lock(in: scheduler)
    defer { hotplugLock.unlock(in: scheduler) }
    try stopMachineCPUsLocked(function, argument, cpus: cpus)
  }

  /// `stopMachine` for a caller that holds the hotplug lock already (CPU hotplug).
  /// Linux: stop_machine_cpuslocked().
  public func stopMachineCPUsLocked(
    _ function: StopFunction, _ argument: UnsafeMutableRawPointer? = nil, cpus: CPUSet? = nil
  ) throws(StopError) {
    let online = Platform.onlineCPUs
    guard isReady else {
      if online.count != 1 {
        Platform.log("stop: stop_machine before the stoppers run, with \(online.count) CPUs online")
      }
      let state = Platform.saveAndDisableInterrupts()
      let result = function(argument)
      Platform.restoreInterrupts(state)
      if result != 0 { throw .failed(result) }
      return
    }
    var stop = MultiStop(
      function: function, argument: argument, threadCount: online.count, active: cpus, participants: online,
      generation: stopsStarted.add(1, ordering: .relaxed).newValue, called: Platform.timestamp())
    try withUnsafeMutablePointer(to: &stop) { (stop) throws(StopError) in
      stop.pointee.setState(.prepare)
      stopMutex.lock(in: scheduler)
      defer { stopMutex.unlock(in: scheduler) }
      try stopCPUsLocked(online, job: .multiStop(UnsafeMutableRawPointer(stop)))
    }
  }

  /// `stopMachine` from a CPU that is online but not active, during hotplug, where
  /// the caller cannot sleep: it takes the stop mutex by spinning, queues the stop on
  /// the active CPUs, takes part itself directly, and spins until the others are done.
  /// Linux: stop_machine_from_inactive_cpu().
  /// - Throws: `.failed(code)` with the first non-zero result.
  public func stopMachineFromInactiveCPU(
    _ function: StopFunction, _ argument: UnsafeMutableRawPointer? = nil, cpus: CPUSet? = nil
  ) throws(StopError) {
    let me = Platform.currentCPU
    precondition(!Platform.isActive(me), "stopMachineFromInactiveCPU on an active CPU")
    let active = Platform.activeCPUs
    var participants = active
    participants.insert(me)
    spin(until: "the stop mutex") { stopMutex.tryLock(in: scheduler) }
    defer { stopMutex.unlock(in: scheduler) }
    var stop = MultiStop(
      function: function, argument: argument, threadCount: active.count + 1, active: cpus,
      participants: participants, generation: stopsStarted.add(1, ordering: .relaxed).newValue,
      called: Platform.timestamp())
    var done = StopDone<Platform>(works: active.count)
    let (own, others) = withUnsafeMutablePointer(to: &stop) { stop -> (Int32, Int32) in
      stop.pointee.setState(.prepare)
      return withUnsafeMutablePointer(to: &done) { done -> (Int32, Int32) in
        _ = queueStopWorks(on: active, job: .multiStop(UnsafeMutableRawPointer(stop)), done: done)
        let own = multiCPUStop(stop)
        spin(until: "the other CPUs to leave the stop") { done.pointee.isComplete() }
        return (own, done.pointee.result)
      }
    }
    let result = own != 0 ? own : others
    if result != 0 { throw .failed(result) }
  }

  /// Spins until `condition()` holds, for a caller that cannot sleep: reports what it
  /// waits for, on which CPU and for how long at the stall bound, and panics at the
  /// panic bound (the same bounds as a multi-CPU stop's states).
  private func spin(until what: StaticString, _ condition: () -> Bool) {
    let start = Platform.nanoseconds()
    var reported = false
    while !condition() {
      let waited = Platform.nanoseconds() &- start
      if waited > stallPanicNanoseconds {
        Platform.panic("stop: CPU \(Platform.currentCPU) (inactive) waited \(waited / 1_000_000) ms for \(what)")
      }
      if waited > stallReportNanoseconds && !reported {
        Platform.log("stop: CPU \(Platform.currentCPU) (inactive) has waited \(waited / 1_000_000) ms for \(what)")
        reported = true
      }
      Platform.relax()
    }
  }
}
