import Synchronization

/// Per-CPU stopper threads (`migration/N`) and the requests they run: the queueing,
/// the thread's loop, and parking for CPU hotplug. The API (`stopOneCPU` ...
/// `stopMachine`) is in StopAPI.swift, the multi-CPU state machine in MultiStop.swift.
///
/// A stopper thread is in the highest scheduling class: once a work is queued on its
/// CPU it takes the CPU from whatever runs there, at the next point that thread can be
/// preempted, and runs the work with preemption off. Linux: kernel/stop_machine.c.
///
/// The guarantee hotplug relies on (Linux commit "stop_machine: Ensure that a queued
/// callback will be called before cpu_stop_park()"): a work the queueing accepted will
/// run; a work refused (the stopper is disabled) is answered at once by signalling its
/// done record as not run. `park` disables first and the thread drains its queue
/// before it parks, so nothing is ever left queued on a parked stopper.
public final class Stoppers<Platform: StopPlatform> {
  /// Possible CPUs.
  public let cpuCount: Int
  /// The scheduler the stopper threads and the waiters sleep in.
  public let scheduler: Scheduler<Platform>
  private let stoppers: UnsafeMutablePointer<CPUStopper<Platform>>
  /// Per CPU: 1 while it waits in a multi-CPU stop with interrupts off
  /// (`waitWithInterruptsOff` watches its own byte), cleared by the CPU that moves the
  /// stop on. A separate array: the platform is handed the byte's address.
  let quietWaiters: UnsafeMutablePointer<Atomic<UInt8>>
  /// Each CPU's work for `stopCPUs`, serialised by `stopMutex`. Linux: stopper->stop_work.
  /// Not in `CPUStopper`, and neither are the traces: a change through a pointer to the
  /// stopper is an access to all of it (its first field, the queue, for
  /// ThreadSanitizer), and these change outside the stopper's lock.
  private let stopWorks: UnsafeMutablePointer<StopWork<Platform>>
  /// Each CPU's timeline of its last multi-CPU stop; written only by that CPU inside it.
  private let traces: UnsafeMutablePointer<StopTrace>
  /// Serialises users of the per-CPU `stopWorks` (`stopCPUs`, `stopMachine`).
  /// Linux: `stop_cpus_mutex`.
  let stopMutex = Mutex<Platform>()
  /// Held by whoever changes which CPUs are online, and by `stopMachine` around its
  /// stop, so the online set a holder reads cannot change under it. A plain mutex: one
  /// writer or one reader at a time. Linux: cpu_hotplug_lock (cpus_read_lock and
  /// cpus_write_lock).
  public let hotplugLock = Mutex<Platform>()
  /// True while `stopCPUs` queues its works, so that `stopTwoCPUs` does not queue its
  /// pair in the opposite order on two of the same CPUs. Linux: stop_cpus_in_progress
  /// (read and written with READ_ONCE/WRITE_ONCE since the fix the seeds show).
  let queueingInProgress = Atomic<Bool>(false)
  /// Whether the boot CPU's stopper runs: before it, `stopMachine` runs the function
  /// right there. Linux: stop_machine_initialized.
  private let ready = Atomic<Bool>(false)
  /// Counts multi-CPU stops started; a stop's number names its trace records.
  let stopsStarted = Atomic<UInt64>(0)
  /// What happened, for tests and benchmarks.
  public let statistics = StopStatistics()
  /// A multi-CPU stop that has waited this long in one state reports the CPUs it waits
  /// for (then again at twice the wait, and so on).
  public let stallReportNanoseconds: UInt64
  /// ... and panics after this long: every CPU of the machine is stuck behind it.
  public let stallPanicNanoseconds: UInt64
  /// How long a CPU waiting in PREPARE naps between looks (a kick ends the nap sooner).
  public var prepareNapNanoseconds: UInt64 = 1_000_000
  /// How long a CPU of a multi-CPU stop spins on the state before it waits without
  /// holding its core: long enough for the next state on a machine whose CPUs all run
  /// (2 vCPUs on 2 cores: a stop took 130 us spinning, 400 us napping at once), short
  /// against a host's time slice.
  public var spinBeforeWaitingNanoseconds: UInt64 = 20_000

  /// Stoppers for `cpuCount` CPUs, every one disabled until `unpark`. Boot, thread
  /// context (it allocates).
  public init(
    cpuCount: Int, scheduler: Scheduler<Platform>, stallReportNanoseconds: UInt64 = 1_000_000_000,
    stallPanicNanoseconds: UInt64 = 30_000_000_000
  ) {
    precondition(cpuCount >= 1)
    self.cpuCount = cpuCount
    self.scheduler = scheduler
    self.stallReportNanoseconds = stallReportNanoseconds
    self.stallPanicNanoseconds = max(stallPanicNanoseconds, stallReportNanoseconds)
    stoppers = .allocate(capacity: cpuCount)
    for cpu in 0..<cpuCount { (stoppers + cpu).initialize(to: CPUStopper()) }
    quietWaiters = .allocate(capacity: cpuCount)
    for cpu in 0..<cpuCount { (quietWaiters + cpu).initialize(to: Atomic<UInt8>(0)) }
    stopWorks = .allocate(capacity: cpuCount)
    for cpu in 0..<cpuCount { (stopWorks + cpu).initialize(to: StopWork()) }
    traces = .allocate(capacity: cpuCount)
    traces.initialize(repeating: StopTrace(), count: cpuCount)
  }

  deinit {
    stoppers.deinitialize(count: cpuCount)
    stoppers.deallocate()
    quietWaiters.deinitialize(count: cpuCount)
    quietWaiters.deallocate()
    stopWorks.deinitialize(count: cpuCount)
    stopWorks.deallocate()
    traces.deinitialize(count: cpuCount)
    traces.deallocate()
  }

  func stopper(_ cpu: CPUIndex) -> UnsafeMutablePointer<CPUStopper<Platform>> {
    precondition(cpu.isKnown && cpu.rawValue < cpuCount, "no stopper for that CPU")
    return stoppers + cpu.rawValue
  }

  /// Whether `cpu` names a stopper.
  func isValid(_ cpu: CPUIndex) -> Bool { cpu.isKnown && cpu.rawValue < cpuCount }

  // MARK: Threads

  /// Records `thread` (bound to `cpu`, of the stopper class, running
  /// `runStopperThread()`) as `cpu`'s stopper. Once per CPU, before `unpark`.
  public func setThread(_ thread: UnsafeMutablePointer<KernelThread>, for cpu: CPUIndex) {
    precondition(thread.pointee.cpu == cpu && thread.pointee.priority == .stopper, "not a stopper of that CPU")
    stopper(cpu).pointee.thread = thread
  }

  /// `cpu`'s stopper thread. - Precondition: `setThread` has run for it.
  public func thread(of cpu: CPUIndex) -> UnsafeMutablePointer<KernelThread> {
    stopper(cpu).pointee.thread!
  }

  /// Enables the boot CPU's stopper and from then on lets `stopMachine` stop CPUs.
  /// Linux: the end of cpu_stop_init().
  public func start(bootCPU: CPUIndex) {
    unpark(bootCPU)
    // Release: the stopper is enabled before anyone takes the multi-CPU path; pairs
    // with the acquire in `isReady`.
    ready.store(true, ordering: .releasing)
  }

  /// Whether stops go through the stopper threads yet.
  public var isReady: Bool { ready.load(ordering: .acquiring) }

  /// The body of every stopper thread: runs the works queued on its CPU in order, each
  /// with preemption off; sleeps while there are none; parks when asked, but only with
  /// its queue empty. Never returns.
  /// Linux: cpu_stopper_thread() with smpboot's loop.
  public func runStopperThread() -> Never {
    let me = stopper(Platform.currentCPU)
    while true {
      let state = me.pointee.lock.lock()
      if let work = me.pointee.removeFirst() {
        me.pointee.lock.unlock(state)
        run(work)
        continue
      }
      if me.pointee.parkRequested {
        // Release: the queue's drain is complete before anyone sees us parked; pairs
        // with the acquire in `isParked`.
        me.pointee.parked.store(true, ordering: .releasing)
      }
      // Marked sleeping before the lock is dropped: a work queued from now on wakes us.
      scheduler.prepareToSleep()
      me.pointee.lock.unlock(state)
      scheduler.schedule()
    }
  }

  /// Runs one work with preemption off, then signals its done record. A function that
  /// returns with the preemption count changed is reported and the count put back.
  private func run(_ work: UnsafeMutablePointer<StopWork<Platform>>) {
    // Read everything first: once signalled, the work and its done record may be gone.
    let job = work.pointee.job
    let done = work.pointee.done
    let countBefore = scheduler.preemptCount
    scheduler.preemptDisable()
    let result: Int32
    switch job {
    case .function(let function, let argument): result = function(argument)
    case .multiStop(let record): result = multiCPUStop(record.assumingMemoryBound(to: MultiStop.self))
    }
    // Release: the function's effects are visible to whoever sees the buffer free;
    // pairs with the acquire in `StopWork.isBusy`.
    work.pointee.inUse.store(false, ordering: .releasing)
    done?.pointee.signal(ran: true, result: result, scheduler: scheduler)
    statistics.worksRun.wrappingAdd(1, ordering: .relaxed)
    let leaked = scheduler.preemptCount - 1 - countBefore
    if leaked != 0 {
      statistics.leakedPreemption.wrappingAdd(1, ordering: .relaxed)
      Platform.log(
        "stop: CPU \(Platform.currentCPU): a stop function left the preemption count \(leaked > 0 ? "raised" : "lowered") by \(leaked > 0 ? leaked : -leaked); put back"
      )
      while scheduler.preemptCount > countBefore + 1 { scheduler.preemptEnable() }
      while scheduler.preemptCount < countBefore + 1 { scheduler.preemptDisable() }
    }
    scheduler.preemptEnable()
  }

  // MARK: Queueing

  /// Queues `work` on `cpu`'s stopper and wakes it; if the stopper is disabled, answers
  /// the work as not run instead. Returns whether it was queued: then its function
  /// will run.
  /// Linux: cpu_stop_queue_work().
  func queue(_ work: UnsafeMutablePointer<StopWork<Platform>>, on cpu: CPUIndex) -> Bool {
    let target = stopper(cpu)
    // The wake-up belongs to the same non-preemptible stretch as the queueing: a
    // stopper woken here must not take this CPU before the caller's other works are
    // queued (see `queueTwo`).
    Platform.preemptDisable()
    let state = target.pointee.lock.lock()
    let enabled = target.pointee.enabled
    if enabled {
      work.pointee.inUse.store(true, ordering: .relaxed)
      target.pointee.append(work)
    } else {
      statistics.refusedWorks.wrappingAdd(1, ordering: .relaxed)
      work.pointee.done?.pointee.signal(ran: false, result: 0, scheduler: scheduler)
    }
    target.pointee.lock.unlock(state)
    if enabled, let thread = target.pointee.thread { scheduler.wake(thread) }
    Platform.preemptEnable()
    return enabled
  }

  /// Queues `work1` on `cpu1` and `work2` on `cpu2` (cpu1 < cpu2), both or neither.
  /// Returns false (nothing queued) if either stopper is disabled. If `stopCPUs` is
  /// queueing meanwhile, it backs off until that finishes and tries again: queued
  /// between that call's works, ours could end up first on one CPU and second on the
  /// other while theirs the reverse, and each pair would wait for the other forever.
  /// Linux: cpu_stop_queue_two_works().
  func queueTwo(
    _ work1: UnsafeMutablePointer<StopWork<Platform>>, on cpu1: CPUIndex,
    _ work2: UnsafeMutablePointer<StopWork<Platform>>, on cpu2: CPUIndex
  ) -> Bool {
    precondition(cpu1.rawValue < cpu2.rawValue, "queueTwo takes its CPUs in ascending order")
    let first = stopper(cpu1)
    let second = stopper(cpu2)
    while true {
      Platform.preemptDisable()
      let state = first.pointee.lock.lock()
      let inner = second.pointee.lock.lock()
      let bothEnabled = first.pointee.enabled && second.pointee.enabled
      // Relaxed: `stopCPUs` sets the flag before it takes any stopper lock and clears
      // it after it dropped the last, and queues in ascending CPU order. Holding both
      // locks, we cannot miss a call that has queued on cpu1 but not yet on cpu2: its
      // store came before its queueing on cpu1, whose lock release we acquired. It may
      // read true falsely (a call that has not reached cpu1 yet); waiting is then
      // harmless, since that call queues with preemption off and finishes soon.
      let racing = bothEnabled && queueingInProgress.load(ordering: .relaxed)
      if bothEnabled && !racing {
        work1.pointee.inUse.store(true, ordering: .relaxed)
        work2.pointee.inUse.store(true, ordering: .relaxed)
        first.pointee.append(work1)
        second.pointee.append(work2)
      }
      second.pointee.lock.unlock(inner)
      first.pointee.lock.unlock(state)
      if racing {
        Platform.preemptEnable()
        statistics.deadlockRetries.wrappingAdd(1, ordering: .relaxed)
        while queueingInProgress.load(ordering: .relaxed) { Platform.relax() }
        continue
      }
      if bothEnabled {
        if let thread = first.pointee.thread { scheduler.wake(thread) }
        if let thread = second.pointee.thread { scheduler.wake(thread) }
      } else {
        statistics.refusedWorks.wrappingAdd(2, ordering: .relaxed)
      }
      Platform.preemptEnable()
      return bothEnabled
    }
  }

  /// Queues each CPU's own work of `stopWorks`, set to `job` and `done`, on every CPU
  /// of `cpus`, in ascending order, with preemption off throughout so that no stopper
  /// woken here takes this CPU before the rest are queued. Returns whether any was queued.
  /// Caller holds `stopMutex`.
  /// Linux: queue_stop_cpus_work().
  func queueStopWorks(on cpus: CPUSet, job: StopJob, done: UnsafeMutablePointer<StopDone<Platform>>) -> Bool {
    Platform.preemptDisable()
    // Relaxed: published to `queueTwo` by the stopper locks taken below (see there).
    queueingInProgress.store(true, ordering: .relaxed)
    var queued = false
    for cpu in cpus {
      let work = stopWorks + cpu.rawValue
      work.pointee.job = job
      work.pointee.done = done
      if queue(work, on: cpu) { queued = true }
    }
    queueingInProgress.store(false, ordering: .relaxed)
    Platform.preemptEnable()
    return queued
  }

  // MARK: Parking (CPU hotplug)

  /// Disables `cpu`'s stopper and asks its thread to park once its queue is empty:
  /// works queued before this still run, works offered after it are answered as not
  /// run. From the CPU going down, inside the stop that takes it down, or any CPU.
  /// Linux: stop_machine_park().
  public func park(_ cpu: CPUIndex) {
    let target = stopper(cpu)
    let state = target.pointee.lock.lock()
    target.pointee.enabled = false
    target.pointee.parkRequested = true
    target.pointee.lock.unlock(state)
    // An idle stopper must look again to park (from another CPU); a running one (the
    // usual case: this is its own work) parks when its queue is empty.
    if let thread = target.pointee.thread { scheduler.wake(thread) }
  }

  /// Whether `cpu`'s stopper thread has drained its queue and parked.
  public func isParked(_ cpu: CPUIndex) -> Bool {
    // Acquire pairs with the release in `runStopperThread`: the drain is complete.
    stopper(cpu).pointee.parked.load(ordering: .acquiring)
  }

  /// Enables `cpu`'s stopper and wakes its thread: from now on it takes work. Once the
  /// CPU is online.
  /// Linux: stop_machine_unpark().
  public func unpark(_ cpu: CPUIndex) {
    let target = stopper(cpu)
    let state = target.pointee.lock.lock()
    target.pointee.enabled = true
    target.pointee.parkRequested = false
    target.pointee.parked.store(false, ordering: .relaxed)
    target.pointee.lock.unlock(state)
    if let thread = target.pointee.thread { scheduler.wake(thread) }
  }

  /// Whether `cpu`'s stopper takes work now.
  public func isEnabled(_ cpu: CPUIndex) -> Bool {
    let target = stopper(cpu)
    let state = target.pointee.lock.lock()
    defer { target.pointee.lock.unlock(state) }
    return target.pointee.enabled
  }

  /// Works waiting on `cpu`'s stopper now.
  public func queuedWorks(on cpu: CPUIndex) -> Int {
    let target = stopper(cpu)
    let state = target.pointee.lock.lock()
    defer { target.pointee.lock.unlock(state) }
    var count = 0
    var work = target.pointee.head
    while let current = work {
      count += 1
      work = current.pointee.next
    }
    return count
  }

  /// `cpu`'s timeline of the last multi-CPU stop it took part in.
  public func trace(of cpu: CPUIndex) -> StopTrace {
    precondition(isValid(cpu), "no stopper for that CPU")
    return traces[cpu.rawValue]
  }

  /// Records `trace` as the running CPU's timeline. By that CPU, at the end of its
  /// part in a multi-CPU stop.
  func record(_ trace: StopTrace) {
    traces[Platform.currentCPU.rawValue] = trace
  }

  /// The number the next multi-CPU stop will have minus one: the last one's.
  public var lastStopGeneration: UInt64 { stopsStarted.load(ordering: .relaxed) }
}
