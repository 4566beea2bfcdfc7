import Synchronization

/// The IPI floor of `make bench`: CPU 0 sends `Vector.ipiPing` to a target whose
/// handler only sends one back (`IPIPing`), nothing queued; a sample is the time from
/// the send to the reply's arrival. Every IPI-based figure is printed as a ratio to it.
enum IPIFloor {
  static let boundNanoseconds: UInt64 = 100_000_000
  /// Set when a reply did not come back in time; every later sample is refused.
  nonisolated(unsafe) private static var replyMissing = false

  /// Installs the ping state with the running CPU as the pinger. Until `disarm`, the
  /// `ipiPing` handler answers pings on every CPU.
  static func arm() {
    let state = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 2)
    state.initialize(to: Atomic<Int>(X86_64Platform.currentCPU.rawValue))
    (state + 1).initialize(to: Atomic<Int>(0))
    replyMissing = false
    IPIPing.state = state  // visible to the target before the ping: the send's fence
  }

  /// Removes the ping state. It stays allocated if a reply is missing (it may still
  /// arrive and count into it), as the benchmark's other in-flight blocks do.
  static func disarm() {
    guard let state = IPIPing.state else { return }
    IPIPing.state = nil
    if !replyMissing { state.deallocate() }
  }

  /// One round trip to `cpu` in nanoseconds; nil if the reply did not arrive within
  /// 100 ms, and for every sample after that (a late reply would end the next sample
  /// early). Waits as a waiting cross-call does, with interrupts on: spins 20 us, then
  /// naps in `hlt` until the reply wakes it (`waitUntil`), so the floor and the call
  /// figures pay for the same way of waiting.
  static func roundTrip(to cpu: CPUIndex) -> UInt64? {
    guard let state = IPIPing.state, !replyMissing else { return nil }
    let flags = CPUInstructions.saveAndDisableInterrupts()
    defer { CPUInstructions.restoreInterrupts(flags) }
    CPUInstructions.enableInterrupts()
    let before = state[1].load(ordering: .relaxed)
    let start = CPUInstructions.readTSC()
    IPI.send(Vector.ipiPing, to: cpu)
    // Acquire pairs with the release in IPIPing.handle(): the reply went all the way round.
    guard
      waitUntil(milliseconds: boundNanoseconds / 1_000_000, { state[1].load(ordering: .acquiring) != before })
    else {
      log("bench: CPU \(cpu.rawValue) did not answer an IPI ping within 100 ms; no more ping samples")
      replyMissing = true
      return nil
    }
    return Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start)
  }
}
