import Synchronization

/// Preemption: where the running thread gives the CPU up without asking. The points are
/// the return from an interrupt to thread context with interrupts on, and
/// `preemptEnable()` bringing the count to zero; a thread that spins with interrupts
/// off, or with preemption disabled, keeps its CPU until it stops doing so.
extension Scheduler {
  /// Keeps the running thread on its CPU until the matching `preemptEnable()`. Nests.
  /// Any context.
  /// Linux: preempt_disable().
  public func preemptDisable() {
    run(Platform.currentCPU).pointee.preemptCount.wrappingAdd(1, ordering: .relaxed)
  }

  /// Undoes one `preemptDisable()`; at zero, reschedules if a more urgent thread is
  /// waiting and interrupts are on.
  /// Linux: preempt_enable().
  public func preemptEnable() {
    let here = run(Platform.currentCPU)
    let before = here.pointee.preemptCount.wrappingSubtract(1, ordering: .relaxed).oldValue
    if before <= 0 { Platform.panic("sched: preemptEnable() without preemptDisable()") }
    if before == 1 { preemptIfAllowed() }
  }

  /// The running CPU's preemption-disable depth.
  public var preemptCount: Int {
    run(Platform.currentCPU).pointee.preemptCount.load(ordering: .relaxed)
  }

  /// Reschedules now if this CPU was asked to, preemption is enabled and interrupts
  /// are on (thread context).
  func preemptIfAllowed() {
    let here = run(Platform.currentCPU)
    guard here.pointee.needsReschedule.load(ordering: .relaxed),
      here.pointee.preemptCount.load(ordering: .relaxed) == 0, Platform.interruptsEnabled
    else { return }
    schedule(preempted: true)
  }

  /// The platform's interrupt exit, interrupts off: if the interrupted context was a
  /// thread with interrupts on and preemption enabled, and a more urgent thread is
  /// runnable here, switch to it now. The interrupted thread resumes here later and
  /// returns from its interrupt then.
  /// Linux: preempt_schedule_irq().
  public func preemptOnInterruptExit(interruptedWithInterruptsOn: Bool) {
    guard interruptedWithInterruptsOn, isRunningOnThisCPU else { return }
    let here = run(Platform.currentCPU)
    guard here.pointee.needsReschedule.load(ordering: .relaxed),
      here.pointee.preemptCount.load(ordering: .relaxed) == 0
    else { return }
    schedule(preempted: true)
  }

  /// Whether this CPU was asked to reschedule (for its idle loop: every wake-up of a
  /// thread here while the idle thread runs asks). A hint: `schedule()` decides under
  /// the lock.
  public var needsReschedule: Bool {
    run(Platform.currentCPU).pointee.needsReschedule.load(ordering: .relaxed)
  }

  /// Context switches made on `cpu` so far.
  public func switchCount(on cpu: CPUIndex) -> Int {
    run(cpu).pointee.switches.load(ordering: .relaxed)
  }
}
