import Synchronization

/// Counters kept by `CrossCalls`, for tests, benchmarks and the log. Relaxed: they
/// order nothing.
public final class CrossCallStatistics {
  private let cpuCount: Int
  private let requested: UnsafeMutablePointer<Atomic<Int>>
  private let handled: UnsafeMutablePointer<Atomic<Int>>
  /// Waits that passed the watchdog bound.
  public let watchdogReports = Atomic<Int>(0)
  /// Calls that completed after the watchdog reported them.
  public let lateCompletions = Atomic<Int>(0)

  init(cpuCount: Int) {
    self.cpuCount = cpuCount
    requested = Self.counters(cpuCount)
    handled = Self.counters(cpuCount)
  }

  deinit {
    requested.deinitialize(count: cpuCount)
    requested.deallocate()
    handled.deinitialize(count: cpuCount)
    handled.deallocate()
  }

  private static func counters(_ count: Int) -> UnsafeMutablePointer<Atomic<Int>> {
    let counters = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: count)
    for index in 0..<count { (counters + index).initialize(to: Atomic<Int>(0)) }
    return counters
  }

  /// Interrupts raised towards `cpu` because a push found its queue empty.
  public func interruptsRequested(for cpu: CPUIndex) -> UnsafeMutablePointer<Atomic<Int>> {
    requested + cpu.rawValue
  }

  /// Call interrupts `cpu` has handled.
  public func interruptsHandled(on cpu: CPUIndex) -> UnsafeMutablePointer<Atomic<Int>> {
    handled + cpu.rawValue
  }
}
