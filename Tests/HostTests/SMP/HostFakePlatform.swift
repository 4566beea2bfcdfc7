import LockstepKernel

/// What both fake platforms (`FakePlatform` for cross-calls, `FakeSchedPlatform` for
/// the scheduler) give test code running on their fake CPUs: `cli`, `sti`, and bounded
/// spins whose `relax()` is an interrupt point.
protocol HostFakePlatform: SMPPlatform {
  /// The encoding of "interrupts on" in `InterruptState` (RFLAGS.IF, as on x86-64).
  static var interruptFlag: UInt64 { get }
}

extension HostFakePlatform {
  /// `cli`.
  static func disableInterrupts() { _ = saveAndDisableInterrupts() }

  /// `sti`: an interrupt point.
  static func enableInterrupts() { restoreInterrupts(InterruptState(raw: interruptFlag)) }

  /// Spins with `relax()` until `condition` holds or `seconds` pass; returns whether it
  /// held. Pending interrupts are taken only if interrupts are on.
  @discardableResult
  static func spin(timeout seconds: Double = 10, until condition: () -> Bool) -> Bool {
    let deadline = HostClock.deadline(after: seconds)
    while !condition() {
      guard HostClock.now() < deadline else { return false }
      relax()
    }
    return true
  }

  /// Spins with `relax()` for `seconds`, as a CPU busy in a long section would.
  static func spin(for seconds: Double) {
    let deadline = HostClock.deadline(after: seconds)
    while HostClock.now() < deadline { relax() }
  }
}
