import Synchronization

/// A test-and-test-and-set spinlock that disables interrupts while held and records its
/// holder, with a bounded wait.
///
/// Waiting longer than `timeout` is a kernel bug (a lock holder that never lets go, or a
/// CPU stopped while holding it): the waiter panics with the lock's name, the holder, and
/// how long it waited, rather than hang.
public struct SpinLock<Platform: SMPPlatform>: ~Copyable {
  /// 0 when free, else the holder's CPU index + 1.
  private let holder = Atomic<Int>(0)
  /// Name shown in the stall report.
  public let name: StaticString
  /// Longest wait before the stall report, in nanoseconds.
  public let timeout: UInt64

  /// A free lock named `name`.
  public init(_ name: StaticString, timeout: UInt64 = 2_000_000_000) {
    self.name = name
    self.timeout = timeout
  }

  /// Takes the lock with interrupts disabled; returns the state `unlock` restores.
  /// Not from NMI context (the interrupted CPU may hold the lock).
  public func lock() -> InterruptState {
    let state = Platform.saveAndDisableInterrupts()
    let cpu = Platform.currentCPU
    guard cpu.isKnown else {
      Platform.panic("spinlock \(name): taken by a CPU that does not know its number yet")
    }
    let me = cpu.rawValue + 1
    // Acquire pairs with the releasing store in unlock(): the previous holder's writes
    // inside the lock are visible to us.
    if holder.compareExchange(expected: 0, desired: me, ordering: .acquiring).exchanged {
      return state
    }
    lockSlowly(me)
    return state
  }

  private func lockSlowly(_ me: Int) {
    let start = Platform.nanoseconds()
    while true {
      let current = holder.load(ordering: .relaxed)
      if current == me {
        Platform.panic("spinlock \(name): CPU \(me - 1) takes it again while holding it")
      }
      if current == 0,
        holder.compareExchange(expected: 0, desired: me, ordering: .acquiring).exchanged
      {
        return  // Acquire as in lock().
      }
      let waited = Platform.nanoseconds() &- start
      if waited > timeout {
        Platform.panic(
          "spinlock \(name): CPU \(me - 1) waited \(waited / 1_000_000) ms; held by CPU \(current - 1)"
        )
      }
      Platform.relax()
    }
  }

  /// Releases the lock and restores interrupts.
  public func unlock(_ state: InterruptState) {
    // Release pairs with the acquire in lock(): our writes precede the next holder's.
    holder.store(0, ordering: .releasing)
    Platform.restoreInterrupts(state)
  }

  /// Runs `body` holding the lock.
  public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
    let state = lock()
    defer { unlock(state) }
    return try body()
  }
}
