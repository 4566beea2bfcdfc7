import LockstepKernel
import Testing

/// The idle loop's polling window, and the per-CPU timer queue's order rules.
@Suite("HaltPolling and TimerQueue")
struct HaltPollingAndTimerTests {
  @Test func theWindowGrowsOnShortHaltsUpToTheMaximumAndShrinksOnLongOnes() {
    var polling = HaltPolling(maximum: 200_000)
    #expect(polling.window == 0)
    polling.halted(for: 50_000)
    #expect(polling.window == HaltPolling.growStart)
    for _ in 0..<10 { polling.halted(for: 50_000) }
    #expect(polling.window == 200_000, "doubles, capped at the maximum")
    polling.halted(for: 5_000_000)
    #expect(polling.window == 100_000, "a long halt halves it")
    for _ in 0..<10 { polling.halted(for: 5_000_000) }
    #expect(polling.window == 0, "below growStart it stops polling")
  }

  @Test func aZeroMaximumNeverPolls() {
    var polling = HaltPolling(maximum: 0)
    for _ in 0..<5 { polling.halted(for: 1_000) }
    #expect(polling.window == 0)
  }

  /// Timers on the host's memory, freed by the caller.
  private func timers(_ count: Int) -> UnsafeMutablePointer<Timer> {
    let timers = UnsafeMutablePointer<Timer>.allocate(capacity: count)
    for index in 0..<count { (timers + index).initialize(to: Timer()) }
    return timers
  }

  @Test func timersExpireInDeadlineOrderAndEqualDeadlinesInArmingOrder() {
    let all = timers(5)
    defer { all.deallocate() }
    var queue = TimerQueue()
    let deadlines: [UInt64] = [300, 100, 200, 100, 500]
    var earliest: [Bool] = []
    for (index, deadline) in deadlines.enumerated() {
      earliest.append(queue.arm(all + index, deadline: deadline))
    }
    #expect(earliest == [true, true, false, false, false])
    #expect(queue.earliestDeadline == 100)
    var fired: [Int] = []
    while let timer = queue.takeExpired(now: 400) { fired.append(timer - all) }
    #expect(fired == [1, 3, 2, 0], "500 is not due at 400")
    #expect(queue.earliestDeadline == 500)
    let armed = (all + 4).pointee.isArmed
    let cancelled = queue.cancel(all + 4)
    let again = queue.cancel(all + 4)
    #expect(armed && cancelled && !again && queue.earliestDeadline == nil)
  }

  @Test func reArmingMovesATimer() {
    let all = timers(2)
    defer { all.deallocate() }
    var queue = TimerQueue()
    queue.arm(all, deadline: 100)
    queue.arm(all + 1, deadline: 200)
    queue.arm(all, deadline: 300)
    var fired: [Int] = []
    while let timer = queue.takeExpired(now: 1_000) { fired.append(timer - all) }
    #expect(fired == [1, 0])
  }
}
