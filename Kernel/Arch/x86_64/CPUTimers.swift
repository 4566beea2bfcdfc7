/// Each CPU's timers over its one local APIC timer: every deadline on a CPU (a nap's
/// bound, a sleep's timeout, the scheduler's tick) goes into that CPU's `TimerQueue`,
/// and the APIC timer is programmed, one-shot, for the earliest. Nothing else programs
/// the APIC timer (its calibration at boot aside).
///
/// Context: each CPU touches only its own queue, with interrupts off; no lock.
enum CPUTimers {
  /// Arms `timer` for `deadline` (Clock nanoseconds) on the running CPU. Interrupts off.
  static func arm(_ timer: UnsafeMutablePointer<Timer>, deadline: UInt64) {
    if PerCPU.current.pointee.timers.arm(timer, deadline: deadline) { program() }
  }

  /// Disarms `timer` on the running CPU; false if it already fired. Interrupts off.
  static func cancel(_ timer: UnsafeMutablePointer<Timer>) -> Bool {
    guard PerCPU.current.pointee.timers.cancel(timer) else { return false }
    program()
    return true
  }

  /// The timer interrupt: runs every due timer's function in deadline order, then
  /// programs the APIC for the next. A function may arm timers again (the tick does).
  /// Interrupts off.
  static func handleInterrupt() {
    let block = PerCPU.current
    while let due = block.pointee.timers.takeExpired(now: Clock.nanoseconds()) {
      // Read before running: the function may let the timer's memory go.
      let (function, argument) = (due.pointee.function, due.pointee.argument)
      function?(argument)
    }
    program()
  }

  /// For a CPU started again by hotplug: its INIT stopped the APIC timer, so timers
  /// left in its queue (the tick of threads that have ended) would never fire and
  /// would hold back every later one. Programs the APIC for them. Interrupts off.
  static func restart() { program() }

  /// Sets the APIC timer for the earliest deadline, or stops it. A deadline already
  /// passed gets the shortest one-shot: its interrupt runs it.
  private static func program() {
    guard let deadline = PerCPU.current.pointee.timers.earliestDeadline else {
      LocalAPIC.stopTimer()
      return
    }
    let now = Clock.nanoseconds()
    LocalAPIC.startOneShotTimer(nanoseconds: deadline > now ? deadline - now : 0)
  }
}
