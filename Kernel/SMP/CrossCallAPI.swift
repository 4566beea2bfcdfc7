import Synchronization

/// The cross-CPU call API, one method per Linux function (kernel/smp.c).
///
/// Context: like Linux, not from interrupt or NMI context (a call handler included):
/// the per-CPU records these use could be claimed twice by an interrupt arriving
/// between "free" and "locked". `callSingleAsync` with the caller's own record is the
/// exception, as in Linux. Calls that may wait warn once when made with interrupts off,
/// except inside `withInterruptsDisabledDeliberately`. Threads are bound to their CPU,
/// so `me` never changes under a caller; but two threads of one CPU may both call, so
/// whatever uses this CPU's shared records (the async record, the records of
/// `callMany`) runs with preemption disabled, as Linux's get_cpu()/put_cpu() pairs do.
extension CrossCalls {
  /// Runs `function(info)` on `cpu`; on the running CPU it runs at once with interrupts
  /// off. With `wait`, returns after the function has returned.
  /// Linux: smp_call_function_single()
  /// - Note: a waiter spins 20 us, then naps in `hlt` until the target wakes it.
  /// - Throws: `.invalidCPU` or `.offline` (Linux: -ENXIO).
  public func callSingle(
    on cpu: CPUIndex, _ function: CallFunction, _ info: UnsafeMutableRawPointer? = nil, wait: Bool
  ) throws(CrossCallError) {
    warnIfInterruptsOff()
    let me = Platform.currentCPU
    if cpu == me {
      runLocally(function, info)
      return
    }
    // From the online check to the queueing this CPU is kept (Linux: get_cpu() ...
    // put_cpu()): a stop_machine taking `cpu` down, which flushes its queue, cannot
    // run here in between, so a call is never queued for a CPU already gone.
    Platform.preemptDisable()
    do throws(CrossCallError) { try checkTarget(cpu) } catch {
      Platform.preemptEnable()
      throw error
    }
    if wait {
      // The record lives on the caller's stack: we do not return before it is unlocked.
      withUnsafeTemporaryAllocation(of: CallRecord.self, capacity: 1) { buffer in
        let record = buffer.baseAddress!
        record.initialize(to: CallRecord(function: function, info: info))
        CallFlags.lock(record, waiting: true)
        enqueue(record, on: cpu)
        // Queued: if `cpu` goes down now, it runs the call first. The wait may sleep.
        Platform.preemptEnable()
        waitForRecord(record)
        record.deinitialize(count: 1)
      }
    } else {
      // From the wait for the record to its queueing, no other thread of this CPU may
      // claim the same record either.
      defer { Platform.preemptEnable() }
      let record = asyncRecords + me.rawValue
      waitForRecord(record)  // Linux: csd_lock(): the previous use must end
      record.pointee.function = function
      record.pointee.info = info
      send(record, to: cpu, wait: false)
    }
  }

  /// Queues the caller's own `record` (function and info set) for `cpu` without
  /// waiting. Usable with interrupts off. The caller serialises uses of the record.
  /// Linux: smp_call_function_single_async()
  /// - Throws: `.recordBusy` (Linux: -EBUSY) while the record is still in flight,
  ///   `.invalidCPU` or `.offline` (-ENXIO).
  public func callSingleAsync(on cpu: CPUIndex, _ record: UnsafeMutablePointer<CallRecord>)
    throws(CrossCallError)
  {
    guard !record.pointee.isLocked else { throw .recordBusy }
    precondition(record.pointee.function != nil, "async call record without a function")
    if cpu == Platform.currentCPU {
      CallFlags.lock(record, waiting: false)
      runLocally(record.pointee.function!, record.pointee.info)
      _ = CallFlags.unlock(record)  // nobody naps on an async record
      return
    }
    Platform.preemptDisable()  // as in callSingle: the check and the queueing together
    defer { Platform.preemptEnable() }
    try checkTarget(cpu)
    send(record, to: cpu, wait: false)
  }

  /// Runs `function(info)` on one online CPU of `cpus`: the running CPU if it is one,
  /// else the first online one.
  /// Linux: smp_call_function_any()
  /// - Note: no NUMA nodes, so Linux's "same node" step has nothing to choose from.
  /// - Throws: `.noOnlineCPU` when no CPU of `cpus` is online.
  public func callAny(
    of cpus: CPUSet, _ function: CallFunction, _ info: UnsafeMutableRawPointer? = nil, wait: Bool
  ) throws(CrossCallError) {
    Platform.preemptDisable()  // Linux: get_cpu(): the choice stays online until queued
    defer { Platform.preemptEnable() }
    let me = Platform.currentCPU
    let target = cpus.contains(me) ? me : cpus.intersection(Platform.onlineCPUs).first
    guard let target else { throw .noOnlineCPU }
    try callSingle(on: target, function, info, wait: wait)
  }

  /// Runs `function(info)` on every online CPU of `cpus` except the running one. With
  /// `wait`, returns after all have returned.
  /// Linux: smp_call_function_many()
  /// - Note: only CPUs whose queue was empty get an IPI (modern Linux), and the IPIs
  ///   queued so far go out before any wait on a busy record (see the body).
  public func callMany(
    _ cpus: CPUSet, _ function: CallFunction, _ info: UnsafeMutableRawPointer? = nil, wait: Bool
  ) {
    warnIfInterruptsOff()
    // Keep this CPU from reading the online set until the calls are queued and, when
    // waiting, done (Linux: preemption off throughout): no CPU can go down in between
    // (its stop_machine needs this CPU too), and this CPU's records for many targets,
    // shared by its threads, stay ours.
    Platform.preemptDisable()
    defer { Platform.preemptEnable() }
    let me = Platform.currentCPU
    var targets = cpus.intersection(Platform.onlineCPUs)
    targets.remove(me)
    guard let first = targets.first else { return }
    if targets.count == 1 {
      // Fast path: one target is a single call (it cannot fail: the CPU is online).
      try? callSingle(on: first, function, info, wait: wait)
      return
    }
    var interrupt = CPUSet()
    for cpu in targets {
      let record = manyRecord(from: me, to: cpu)
      if record.pointee.isLocked && !interrupt.isEmpty {
        // About to wait, serving our own queue meanwhile: interrupt the CPUs queued so
        // far first, or a function we serve that calls them would wait on a CPU never
        // told (Linux sends after the loop, but its waits run no foreign functions).
        Platform.sendCallIPI(toAll: interrupt)
        interrupt = CPUSet()
      }
      waitForRecord(record)  // the previous call through it must be done
      CallFlags.lock(record, waiting: wait)
      record.pointee.function = function
      record.pointee.info = info
      if enqueue(record, on: cpu, sendInterrupt: false) { interrupt.insert(cpu) }
    }
    if !interrupt.isEmpty { Platform.sendCallIPI(toAll: interrupt) }
    guard wait else { return }
    for cpu in targets { waitForRecord(manyRecord(from: me, to: cpu)) }
  }

  /// Runs `function(info)` on every other online CPU.
  /// Linux: smp_call_function()
  public func callOthers(_ function: CallFunction, _ info: UnsafeMutableRawPointer? = nil, wait: Bool) {
    callMany(Platform.onlineCPUs, function, info, wait: wait)
  }

  /// Runs `function(info)` on every online CPU, the running one included (there with
  /// interrupts off).
  /// Linux: on_each_cpu()
  public func onEachCPU(_ function: CallFunction, _ info: UnsafeMutableRawPointer? = nil, wait: Bool) {
    callOthers(function, info, wait: wait)
    runLocally(function, info)
  }

  /// Runs `function(info)` on every online CPU of `cpus`, the running one included if
  /// it is in `cpus`.
  /// Linux: on_each_cpu_mask()
  public func onEachCPU(
    in cpus: CPUSet, _ function: CallFunction, _ info: UnsafeMutableRawPointer? = nil, wait: Bool
  ) {
    callMany(cpus, function, info, wait: wait)
    if cpus.contains(Platform.currentCPU) { runLocally(function, info) }
  }

  /// Runs `function(info)` on each online CPU for which `condition(cpu, info)` holds.
  /// Linux: on_each_cpu_cond()
  /// - Note: the mask lives on the stack, so there is no allocation to fail and no
  ///   one-by-one fallback.
  public func onEachCPU(
    where condition: (CPUIndex, UnsafeMutableRawPointer?) -> Bool, _ function: CallFunction,
    _ info: UnsafeMutableRawPointer? = nil, wait: Bool
  ) {
    var chosen = CPUSet()
    for cpu in Platform.onlineCPUs where condition(cpu, info) { chosen.insert(cpu) }
    onEachCPU(in: chosen, function, info, wait: wait)
  }

  /// Makes every other online CPU run an empty function and waits for all: when it
  /// returns, each has taken an interrupt since the call began.
  /// Linux: kick_all_cpus_sync()
  public func kickAllCPUsSync() {
    // Make the caller's earlier stores visible before the kick (Linux: smp_mb()).
    atomicMemoryFence(ordering: .sequentiallyConsistent)
    callOthers(doNothing, nil, wait: true)
  }

  // MARK: Helpers

  private func runLocally(_ function: CallFunction, _ info: UnsafeMutableRawPointer?) {
    let state = Platform.saveAndDisableInterrupts()
    function(info)
    Platform.restoreInterrupts(state)
  }

  private func checkTarget(_ cpu: CPUIndex) throws(CrossCallError) {
    guard cpu.rawValue >= 0, cpu.rawValue < min(cpuCount, Platform.possibleCPUCount) else {
      throw .invalidCPU(cpu)
    }
    guard Platform.isOnline(cpu) else { throw .offline(cpu) }
  }

  /// Locks, queues and optionally waits for a record bound for one CPU.
  private func send(_ record: UnsafeMutablePointer<CallRecord>, to cpu: CPUIndex, wait: Bool) {
    CallFlags.lock(record, waiting: wait)
    enqueue(record, on: cpu)
    if wait { waitForRecord(record) }
  }

  private func manyRecord(from sender: CPUIndex, to target: CPUIndex) -> UnsafeMutablePointer<CallRecord> {
    manyRecords + sender.rawValue * cpuCount + target.rawValue
  }
}

/// The empty function kick_all_cpus_sync() sends.
private let doNothing: CallFunction = { _ in }
