/// How long an idle CPU polls for work before it halts, adapted to what it sees. Under
/// a hypervisor, waking a halted vCPU costs the host a thread wake-up (100-170 us of
/// host time on this project's machines); a CPU that polls a little catches a wake-up
/// that comes soon without halting at all. Linux: the cpuidle-haltpoll governor
/// (guest_halt_poll_ns, grow, shrink).
///
/// The window grows when a halt ended sooner than the maximum window (polling that
/// long would have caught it) and shrinks when a whole window was polled in vain and the
/// halt that followed outlasted the maximum (the CPU is really idle). Not thread-safe:
/// each CPU has its own, used by its idle loop only.
public struct HaltPolling: Sendable {
  /// The largest window, in nanoseconds; 0 turns polling off (`idle_poll_us=`).
  public var maximum: UInt64
  /// The window now.
  public private(set) var window: UInt64 = 0

  /// The first window after a halt that polling could have saved.
  public static let growStart: UInt64 = 10_000

  /// A governor whose window may grow up to `maximum` nanoseconds.
  public init(maximum: UInt64) {
    self.maximum = maximum
  }

  /// After a halt of `nanoseconds` that ended in a wake-up: grows the window if polling
  /// for the maximum would have caught it, shrinks it if the CPU was idle longer.
  public mutating func halted(for nanoseconds: UInt64) {
    guard maximum > 0 else {
      window = 0
      return
    }
    if nanoseconds < maximum {
      window = window == 0 ? Self.growStart : min(window * 2, maximum)
    } else {
      window /= 2
      if window < Self.growStart { window = 0 }
    }
  }
}
