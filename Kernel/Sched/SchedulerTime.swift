import Synchronization

/// Time in the scheduler: sleeping for a while, and the tick that makes normal threads
/// on one CPU take turns. The tick runs only while a CPU has more than one runnable
/// normal thread (Linux: NO_HZ), every `timeSlice`. It is armed when sharing starts and
/// not cancelled when it ends: it fires once more, finds nothing to share, and stays
/// off. Cancelling would reprogram the hardware timer on every wake-up and sleep.
extension Scheduler {
  /// How long a normal thread runs before the next runnable one of its class gets the
  /// CPU, when they share it.
  public var timeSlice: UInt64 { 4_000_000 }

  /// Sleeps the running thread for at least `nanoseconds`, or until woken.
  /// Thread context. Linux: schedule_timeout_uninterruptible().
  public func sleep(nanoseconds: UInt64) {
    _ = sleep(until: Platform.nanoseconds() &+ nanoseconds, unless: { false })
  }

  /// Sleeps the running thread until `deadline` or until woken, unless `condition`
  /// holds once it is marked sleeping (so a wake-up that made it true is not lost).
  /// Returns false when the deadline passed first. Thread context.
  public func sleep(until deadline: UInt64, unless condition: () -> Bool) -> Bool {
    var timer = Timer(function: Platform.wakeThreadTimerFunction, argument: UnsafeMutableRawPointer(current))
    return withUnsafeMutablePointer(to: &timer) { timer in
      let interrupts = Platform.saveAndDisableInterrupts()
      prepareToSleep()
      if condition() {
        cancelSleep()
        Platform.restoreInterrupts(interrupts)
        return true
      }
      Platform.armTimer(timer, deadline: deadline)
      schedule()
      // Woken early: the timer must not fire later into a stack that moved on.
      let woken = Platform.cancelTimer(timer)
      Platform.restoreInterrupts(interrupts)
      return woken
    }
  }

  /// The tick fired on this CPU: if normal threads share it, the running one's slice
  /// is over (the interrupt's exit switches); otherwise the tick stays off.
  /// Timer interrupt, interrupts off.
  public func tickFired() {
    let here = run(Platform.currentCPU)
    let sharing = here.pointee.lock.withLock {
      here.pointee.current?.pointee.priority == .normal && here.pointee.queue.highestPriority == .normal
    }
    if sharing { here.pointee.needsReschedule.store(true, ordering: .relaxed) }
  }

  /// A reschedule interrupt arrived on this CPU: arms the tick if a thread woken here
  /// must share the CPU with the running one. Interrupt context, interrupts off.
  public func reschedulingInterrupt() {
    tickIfSharing()
  }

  /// Arms or stops this CPU's tick as its runnable normal threads need. Interrupts off
  /// or on.
  func tickIfSharing() {
    let here = run(Platform.currentCPU)
    let sharing = here.pointee.lock.withLock {
      here.pointee.current?.pointee.priority == .normal && here.pointee.queue.highestPriority == .normal
    }
    updateTick(sharing: sharing)
  }

  /// Arms the tick when `sharing` and it is not armed yet (see the type's comment for
  /// why it is never cancelled here).
  func updateTick(sharing: Bool) {
    guard sharing else { return }
    let tick = ticks + Platform.currentCPU.rawValue
    let interrupts = Platform.saveAndDisableInterrupts()
    if !tick.pointee.isArmed { Platform.armTimer(tick, deadline: Platform.nanoseconds() &+ timeSlice) }
    Platform.restoreInterrupts(interrupts)
  }

  /// Whether the running thread may sleep instead of halting its CPU: it is not the
  /// idle thread and preemption is enabled.
  public var canSleep: Bool {
    let here = run(Platform.currentCPU)
    guard let running = here.pointee.current else { return false }
    return running != here.pointee.idle && here.pointee.preemptCount.load(ordering: .relaxed) == 0
  }

  /// Sleeps the running thread until the next interrupt on this CPU, or `deadline`:
  /// what `sti; hlt` is for a CPU, for one thread, so that the CPU's other threads run
  /// meanwhile. Entered with interrupts off (a wake-up checked for before cannot be
  /// missed: the interrupt that brings it stays pending until some thread of this CPU
  /// enables interrupts, and wakes us then); returns with them off.
  /// - Precondition: `canSleep`.
  public func sleepUntilInterrupt(deadline: UInt64) {
    var timer = Timer()  // no function: its interrupt is the wake-up
    withUnsafeMutablePointer(to: &timer) { timer in
      let here = run(Platform.currentCPU)
      let me = current
      here.pointee.nappers.append(me)
      prepareToSleep()
      Platform.armTimer(timer, deadline: deadline)
      schedule()
      _ = Platform.cancelTimer(timer)
      _ = here.pointee.nappers.remove(me)  // woken by something else than an interrupt
    }
  }

  /// An interrupt arrived on this CPU: wakes every thread sleeping until one.
  /// Interrupt context, interrupts off.
  public func interruptArrived() {
    let here = run(Platform.currentCPU)
    while let napper = here.pointee.nappers.removeFirst() { wake(napper) }
  }
}
