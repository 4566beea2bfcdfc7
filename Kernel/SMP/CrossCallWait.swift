import Synchronization

/// Waiting for a call record to be handed back (Linux: csd_lock_wait()), with the CSD
/// watchdog: modern Linux has it under CONFIG_CSD_LOCK_WAIT_DEBUG; Lockstep's is on.
extension CrossCalls {
  /// Reminders after the first report come five bounds apart, and never more than
  /// one a second: a tiny bound must not flood the console (whose printer may be the
  /// very CPU we wait for).
  private var reminderInterval: UInt64 { max(5 * watchdogTimeout, 1_000_000_000) }
  /// A waiter with interrupts on spins this long, then naps until the target's wake-up
  /// interrupt (see `CallFlags.sleeping`): on a machine with fewer cores than CPUs
  /// (QEMU with 8 vCPUs on 2 host cores) a spinning waiter holds the very core its
  /// target needs to answer. The nap's timer only bounds it, for the watchdog.
  private var spinBeforeSleeping: UInt64 { 20_000 }
  private var nap: UInt64 { 1_000_000 }

  /// Waits until `record` is unlocked by the CPU it was sent to, serving the running CPU's
  /// own queue meanwhile; with interrupts on it naps in `waitForInterrupt` after a
  /// short spin. Past `watchdogTimeout` it reports the wait (waiting CPU,
  /// target, function, time) and re-sends the interrupt once; it reminds every five
  /// bounds after that (at most once a second), and reports the completion if it comes
  /// late. Never gives up, since the record may not be reused until the target is done
  /// with it, unless `panicAfter` is set: past it, the wait ends in a panic report.
  /// It serves its own queue on every iteration, reports or not.
  func waitForRecord(_ record: UnsafeMutablePointer<CallRecord>) {
    guard record.pointee.isLocked else { return }
    // Written by this CPU when it sent the record; its earlier use may have had another.
    let target = CPUIndex(Int(record.pointee.target))
    let start = Platform.nanoseconds()
    var nextReport = watchdogTimeout
    var reported = false
    while record.pointee.isLocked {
      serveOwnQueue()
      let waited = Platform.nanoseconds() &- start
      if waited > nextReport {
        report(record, target: target, waited: waited, first: !reported)
        if !reported { Platform.sendCallIPI(to: target) }
        reported = true
        nextReport = waited + reminderInterval
      }
      if panicAfter > 0 && waited > panicAfter { panicOnStall(record, target: target, waited: waited) }
      if waited > spinBeforeSleeping && Platform.interruptsEnabled {
        // Mark and sleep with interrupts off in between: the target's wake-up IPI, sent
        // as soon as it sees the mark, must find us asleep, not be taken just before.
        let state = Platform.saveAndDisableInterrupts()
        if CallFlags.markSleeping(record) {
          Platform.waitForInterrupt(atMost: nap)
        } else {
          Platform.restoreInterrupts(state)
        }
      } else {
        Platform.relax()
      }
    }
    if reported {
      statistics.lateCompletions.wrappingAdd(1, ordering: .relaxed)
      let waited = (Platform.nanoseconds() &- start) / 1_000_000
      Platform.log(
        "csd: CPU \(Platform.currentCPU.rawValue): call to CPU \(target.rawValue) completed late, after \(waited) ms"
      )
    }
  }

  /// Runs whatever other CPUs queued for us while we wait, with interrupts off as the
  /// interrupt handler would; returns at once if the queue is empty.
  func serveOwnQueue() {
    let me = Platform.currentCPU
    guard !queue(me).pointee.isEmpty else { return }
    let state = Platform.saveAndDisableInterrupts()
    flushQueue(warnIfOffline: true)
    Platform.restoreInterrupts(state)
  }

  /// Linux: csd_lock_wait_toolong() with panic_on_ipistall.
  private func panicOnStall(_ record: UnsafeMutablePointer<CallRecord>, target: CPUIndex, waited: UInt64)
    -> Never
  {
    Platform.panic(
      "csd: CPU \(Platform.currentCPU.rawValue) waited \(waited / 1_000_000) ms for CPU \(target.rawValue) to run \(hex: functionAddress(record.pointee.function)); panic_on_ipistall=\(panicAfter / 1_000_000)"
    )
  }

  private func report(
    _ record: UnsafeMutablePointer<CallRecord>, target: CPUIndex, waited: UInt64, first: Bool
  ) {
    if first { statistics.watchdogReports.wrappingAdd(1, ordering: .relaxed) }
    let me = Platform.currentCPU.rawValue
    let function = functionAddress(record.pointee.function)
    let milliseconds = waited / 1_000_000
    if first {
      Platform.log(
        "csd: CPU \(me) waiting \(milliseconds) ms for CPU \(target.rawValue) to run \(hex: function); re-sending the IPI"
      )
      Platform.showWhereStuck(target)
    } else {
      Platform.log(
        "csd: CPU \(me) still waiting for CPU \(target.rawValue) to run \(hex: function), \(milliseconds) ms")
    }
  }
}
