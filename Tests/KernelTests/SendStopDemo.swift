/// The end of what `make run` shows: `smp_send_stop`, the stop for good that shutdown
/// makes, with how each CPU was stopped (the stop vector, or NMI for a CPU that kept
/// interrupts off) and when it acknowledged. A rehearsal first (the same path, the CPUs
/// then go on), so that the stop shown runs warm code: under TCG the first run of any
/// code pays for its translation.
enum SendStopDemo {
  /// Returns whether every other CPU was stopped, each by the stop vector or NMI.
  static func run() -> Bool {
    _ = SMPStop.rehearse()
    log("demo: smp_send_stop: stopping every other CPU for good, as shutdown does")
    guard let outcome = SMPStop.stopOtherCPUs(), let stop = SMPStop.shared else {
      log("demo: smp_send_stop did not run")
      return false
    }
    log("demo: CPU  stopped by  acknowledged after")
    var allStopped = outcome.failed.isEmpty
    for cpu in outcome.running {
      let (mechanism, at) = stop.acknowledgement(of: cpu)
      let after = at > outcome.startNanoseconds ? (at - outcome.startNanoseconds) / 1000 : 0
      log("demo: \(cpu.rawValue < 10 ? " " : "")\(cpu)   \(mechanism.name)         \(after) us")
      if mechanism != .vector && mechanism != .nmi { allStopped = false }
    }
    log(
      "demo: smp_send_stop stopped \(outcome.running.count - outcome.failed.count) of \(outcome.running.count) other CPUs in \(outcome.nanoseconds / 1000) us, \(outcome.attempts) attempt(s), \(outcome.sentNMI.count) by NMI; CPU \(outcome.caller) goes on alone"
    )
    return allStopped
  }
}
