import Synchronization

/// One CPU's scheduling state: its run queue under a lock, the thread on it, its idle
/// thread, and the flags that ask it to reschedule. Linux: `struct rq`.
struct CPURunState<Platform: SMPPlatform>: ~Copyable {
  /// Only under `lock`. First, not `lock`: ThreadSanitizer marks a change through
  /// `pointee` as an access at the struct's first byte, which must not be the lock word
  /// other CPUs spin on (every contended lock would be reported as a race).
  var queue = RunQueue()
  /// Guards `queue`, `current` and the states of this CPU's threads.
  let lock = SpinLock<Platform>("runqueue")
  /// The thread on the CPU; nil before the CPU adopted its first thread.
  var current: UnsafeMutablePointer<KernelThread>? = nil
  /// The thread that runs when nothing else can.
  var idle: UnsafeMutablePointer<KernelThread>? = nil
  /// Threads that ended here, not yet reclaimed: their stacks were in use until the
  /// switch away from them finished.
  var dead = ThreadList()
  /// Threads sleeping until the next interrupt on this CPU (`sleepUntilInterrupt`);
  /// touched only by this CPU, with interrupts off.
  var nappers = ThreadList(.wait)
  /// Set when a thread of a higher class than the running one became runnable here.
  /// Relaxed: written and read under `lock`, or read as a hint that `schedule()`
  /// re-checks under it. Linux: TIF_NEED_RESCHED.
  let needsReschedule = Atomic<Bool>(false)
  /// Nesting depth of `preemptDisable()` on this CPU; only this CPU changes it, and no
  /// interrupt handler does, so relaxed read-modify-writes suffice. Linux: preempt_count.
  let preemptCount = Atomic<Int>(0)
  /// Context switches made (relaxed: a statistic).
  let switches = Atomic<Int>(0)
}

/// Per-CPU run queues with classes (stopper, normal FIFO, idle), wake-ups across CPUs,
/// and preemption. Threads are bound to their CPU; each CPU runs only its own queue, so
/// only its own CPU ever picks a thread to switch to, and other CPUs only add to it.
///
/// Context: `schedule()` from thread context; `wake(_:)` from any context but NMI.
public final class Scheduler<Platform: SchedPlatform> {
  /// Possible CPUs; every per-CPU array has this many entries.
  public let cpuCount: Int
  private let cpus: UnsafeMutablePointer<CPURunState<Platform>>
  /// Each CPU's tick timer, armed while it has more than one runnable normal thread.
  let ticks: UnsafeMutablePointer<Timer>
  private let warnedAtomicSleep = Atomic<Bool>(false)

  /// Run queues for `cpuCount` CPUs. Boot, before any thread exists.
  public init(cpuCount: Int) {
    precondition(cpuCount >= 1)
    self.cpuCount = cpuCount
    cpus = .allocate(capacity: cpuCount)
    for cpu in 0..<cpuCount { (cpus + cpu).initialize(to: CPURunState()) }
    ticks = .allocate(capacity: cpuCount)
    for cpu in 0..<cpuCount { (ticks + cpu).initialize(to: Timer(function: Platform.tickTimerFunction)) }
  }

  deinit {
    cpus.deinitialize(count: cpuCount)
    cpus.deallocate()
    ticks.deinitialize(count: cpuCount)
    ticks.deallocate()
  }

  func run(_ cpu: CPUIndex) -> UnsafeMutablePointer<CPURunState<Platform>> {
    precondition(cpu.isKnown && cpu.rawValue < cpuCount, "no run queue for that CPU")
    return cpus + cpu.rawValue
  }

  /// Makes the flow running on this CPU the thread `thread`: the boot CPU's main flow,
  /// or an AP's idle loop. With `asIdle`, it becomes the CPU's idle thread too.
  /// Interrupts off; once per CPU before it schedules.
  public func adopt(_ thread: UnsafeMutablePointer<KernelThread>, asIdle: Bool) {
    let here = run(Platform.currentCPU)
    precondition(thread.pointee.cpu == Platform.currentCPU, "adopting a thread of another CPU")
    here.pointee.lock.withLock {
      thread.pointee.stateWord.store(ThreadState.running.rawValue, ordering: .relaxed)
      here.pointee.current = thread
      if asIdle { here.pointee.idle = thread }
      // A thread woken here before this CPU had a current one asked no one to
      // reschedule; ask now.
      if here.pointee.queue.count > 0 { here.pointee.needsReschedule.store(true, ordering: .relaxed) }
    }
  }

  /// Gives `cpu` its idle thread (created, not started), for a CPU whose adopted flow
  /// is not the idle loop (the boot CPU).
  public func setIdleThread(_ thread: UnsafeMutablePointer<KernelThread>, of cpu: CPUIndex) {
    precondition(thread.pointee.priority == .idle && thread.pointee.cpu == cpu)
    run(cpu).pointee.lock.withLock { run(cpu).pointee.idle = thread }
  }

  /// The thread running on this CPU. Any context once the CPU adopted a thread.
  public var current: UnsafeMutablePointer<KernelThread> {
    run(Platform.currentCPU).pointee.current!
  }

  /// Whether this CPU has adopted a thread (before that, nothing may sleep or switch).
  public var isRunningOnThisCPU: Bool {
    let cpu = Platform.currentCPU
    return cpu.isKnown && cpu.rawValue < cpuCount && run(cpu).pointee.current != nil
  }

  /// Makes a new or sleeping thread runnable on its CPU, and makes that CPU reschedule
  /// if the thread outranks what runs there. Returns false if it was neither new nor
  /// sleeping (already runnable, running or dead). Any context but NMI.
  /// Linux: wake_up_process() / try_to_wake_up().
  @discardableResult
  public func wake(_ thread: UnsafeMutablePointer<KernelThread>) -> Bool {
    // Read once, before the lock: once it is released the woken thread may run, end and
    // be reclaimed on its CPU before this returns, so `thread` must not be read after.
    // (A thread never changes CPU.)
    let cpu = thread.pointee.cpu
    let target = run(cpu)
    var preempts = false
    let woke = target.pointee.lock.withLock { () -> Bool in
      let state = thread.pointee.state
      guard state == .sleeping || state == .new else { return false }
      thread.pointee.stateWord.store(ThreadState.runnable.rawValue, ordering: .relaxed)
      // A thread preempted between preparing to sleep and sleeping is still queued:
      // runnable again, it needs no second place. Linux: ttwu_runnable().
      if !thread.pointee.isQueued { enqueue(thread, on: target) }
      if let running = target.pointee.current, thread.pointee.priority > running.pointee.priority {
        preempts = true
        target.pointee.needsReschedule.store(true, ordering: .relaxed)
      }
      return true
    }
    if cpu == Platform.currentCPU {
      if preempts { preemptIfAllowed() } else if woke { tickIfSharing() }
    } else if woke {
      // Also when not preempting: the target then arms its tick if the thread must
      // share the CPU with the one running there (`reschedulingInterrupt`).
      Platform.sendReschedule(to: cpu)
    }
    return woke
  }

  /// Gives the CPU to the most urgent runnable thread of this CPU (or to the idle
  /// thread): the running thread goes back in the queue if it is still running, stays
  /// out if it is sleeping or dead. Returns when this thread runs again. Thread context,
  /// any interrupt state (restored on return).
  /// Linux: schedule().
  public func schedule() {
    schedule(preempted: false)
  }

  /// `schedule()`; with `preempted`, the running thread is being taken off its CPU,
  /// not giving it up: it stays queued even if it was about to sleep (it re-checks its
  /// condition and sleeps for real when it runs again). Linux: __schedule(SM_PREEMPT).
  func schedule(preempted: Bool) {
    let interrupts = Platform.saveAndDisableInterrupts()
    let here = run(Platform.currentCPU)
    if here.pointee.preemptCount.load(ordering: .relaxed) > 0,
      !warnedAtomicSleep.exchange(true, ordering: .relaxed)
    {
      Platform.log(
        "sched: CPU \(Platform.currentCPU): schedule() with preemption disabled (count \(here.pointee.preemptCount.load(ordering: .relaxed)))"
      )
    }
    let lockState = here.pointee.lock.lock()
    let previous = here.pointee.current!
    let next = pickNext(here, after: previous, preempted: preempted)
    let sharing = next.pointee.priority == .normal && here.pointee.queue.highestPriority == .normal
    here.pointee.lock.unlock(lockState)
    updateTick(sharing: sharing)
    if next != previous {
      here.pointee.switches.wrappingAdd(1, ordering: .relaxed)
      Platform.switchContext(from: previous, to: next)
    }
    Platform.restoreInterrupts(interrupts)
  }

  /// Under the run-queue lock: requeues `previous` unless it sleeps of its own accord,
  /// has ended, is queued already (woken while still on the CPU) or is the idle thread
  /// (never queued); picks the next thread. A picked thread that was runnable is now
  /// running; one preempted while preparing to sleep stays sleeping.
  private func pickNext(
    _ here: UnsafeMutablePointer<CPURunState<Platform>>, after previous: UnsafeMutablePointer<KernelThread>,
    preempted: Bool
  ) -> UnsafeMutablePointer<KernelThread> {
    let state = previous.pointee.state
    if state == .dead || (state == .sleeping && !preempted && previous.pointee.isQueued) {
      // Going to sleep (or ending) while still queued from a wake-up that came while it
      // ran (woken, then it cancelled that sleep, then prepared a new one): out of the
      // queue, as Linux deactivates a task that schedules with a sleeping state.
      if previous.pointee.isQueued {
        _ = here.pointee.queue.remove(previous)
        previous.pointee.isQueued = false
      }
      if state == .dead { here.pointee.dead.append(previous) }
    } else if previous != here.pointee.idle && !previous.pointee.isQueued && (preempted || state != .sleeping)
    {
      if state == .running {
        previous.pointee.stateWord.store(ThreadState.runnable.rawValue, ordering: .relaxed)
      }
      enqueue(previous, on: here)
    }
    here.pointee.needsReschedule.store(false, ordering: .relaxed)
    let next: UnsafeMutablePointer<KernelThread>
    if let queued = here.pointee.queue.dequeueNext() {
      queued.pointee.isQueued = false
      next = queued
    } else {
      next = here.pointee.idle!
    }
    if next.pointee.state == .runnable {
      next.pointee.stateWord.store(ThreadState.running.rawValue, ordering: .relaxed)
    }
    here.pointee.current = next
    return next
  }

  /// Puts `thread` in `here`'s run queue. Under its lock.
  private func enqueue(
    _ thread: UnsafeMutablePointer<KernelThread>, on here: UnsafeMutablePointer<CPURunState<Platform>>
  ) {
    precondition(!thread.pointee.isQueued, "sched: a thread queued twice")
    here.pointee.queue.enqueue(thread)
    thread.pointee.isQueued = true
  }

  /// Marks the running thread sleeping, under its run-queue lock, so that a `wake` from
  /// now on makes it runnable again. The caller then re-checks what it waits for and
  /// calls `schedule()` (which returns at once if the wake-up already came).
  /// Linux: set_current_state(TASK_UNINTERRUPTIBLE).
  public func prepareToSleep() {
    let here = run(Platform.currentCPU)
    here.pointee.lock.withLock {
      here.pointee.current!.pointee.stateWord.store(ThreadState.sleeping.rawValue, ordering: .relaxed)
    }
  }

  /// Undoes `prepareToSleep` when the caller found its condition true after all.
  /// Linux: __set_current_state(TASK_RUNNING).
  public func cancelSleep() {
    let here = run(Platform.currentCPU)
    here.pointee.lock.withLock {
      let me = here.pointee.current!
      if me.pointee.state == .sleeping {
        me.pointee.stateWord.store(ThreadState.running.rawValue, ordering: .relaxed)
      }
    }
  }

  /// Ends the running thread: it is marked dead and never runs again; its CPU reclaims
  /// it later (`takeDeadThreads`). Thread context. Linux: do_exit() for a kthread.
  public func exitCurrent() -> Never {
    let here = run(Platform.currentCPU)
    if here.pointee.preemptCount.load(ordering: .relaxed) != 0 {
      Platform.log("sched: \(here.pointee.current!.pointee.name) ends with preemption disabled")
    }
    if let thread = here.pointee.current, thread.pointee.mutexesHeld != 0 {
      Platform.log("sched: \(thread.pointee.name) ends holding \(thread.pointee.mutexesHeld) mutex(es)")
    }
    _ = Platform.saveAndDisableInterrupts()
    here.pointee.lock.withLock {
      here.pointee.current!.pointee.stateWord.store(ThreadState.dead.rawValue, ordering: .relaxed)
    }
    schedule()
    Platform.panic("sched: a dead thread ran again")
  }

  /// The threads that ended on this CPU and can no longer run (the switch away from
  /// each has finished, since this CPU is running something else), for the caller to
  /// reclaim. Thread context of this CPU.
  public func takeDeadThreads() -> ThreadList {
    let here = run(Platform.currentCPU)
    var taken = ThreadList()
    here.pointee.lock.withLock {
      while let thread = here.pointee.dead.removeFirst() { taken.append(thread) }
    }
    return taken
  }
}
