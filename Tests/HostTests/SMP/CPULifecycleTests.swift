import Foundation
import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// The bring-up state machine: every race between the boot CPU and an AP ends with
  /// the CPU either online (the AP won) or owned by the boot CPU, never both, and an AP
  /// of an earlier attempt never joins a later one.
  @Suite("CPU lifecycle")
  struct CPULifecycleTests {
    @Test func theFirstAttemptsAPJoins() {
      let cpu = CPULifecycle()
      let claimed = cpu.claimForStart(attempt: 8)
      let joined = cpu.join(attempt: 8)
      let retried = cpu.claimForRetry()
      let givenUp = cpu.giveUp()
      #expect(claimed && joined == .joined && cpu.state == .online)
      #expect(!retried, "an online CPU must not be taken for a retry")
      #expect(!givenUp, "an online CPU must not be given up on")
    }

    @Test func aCPUClaimedForStartCannotBeClaimedAgain() {
      let cpu = CPULifecycle()
      let first = cpu.claimForStart(attempt: 8)
      let second = cpu.claimForStart(attempt: 8)
      #expect(first && !second)
    }

    @Test func anAPFindingARetryParksWithoutJoining() {
      let cpu = CPULifecycle()
      _ = cpu.claimForStart(attempt: 8)
      let retried = cpu.claimForRetry()
      let joined = cpu.join(attempt: 8)
      #expect(retried && joined == .retryPending && cpu.state == .retrying)
    }

    @Test func anAPOfTheFirstAttemptCannotJoinTheRetry() {
      // The retry's INIT has not reset it yet; the boot CPU already re-armed the CPU.
      let cpu = CPULifecycle()
      _ = cpu.claimForStart(attempt: 8)
      _ = cpu.claimForRetry()
      let rearmed = cpu.rearm(attempt: 10)
      #expect(rearmed)
      let stale = cpu.join(attempt: 8)
      let stateAfterStale = cpu.state
      let fresh = cpu.join(attempt: 10)
      #expect(stale == .retryPending && stateAfterStale == .starting)
      #expect(fresh == .joined, "the AP the retry started joins")
    }

    @Test func anAPArrivingAfterTheGiveUpIsRefused() {
      let cpu = CPULifecycle()
      _ = cpu.claimForStart(attempt: 8)
      _ = cpu.claimForRetry()
      let rearmed = cpu.rearm(attempt: 10)
      #expect(rearmed)
      let givenUp = cpu.giveUp()
      let joined = cpu.join(attempt: 10)
      #expect(givenUp && joined == .refused(.failed) && cpu.state == .failed)
    }

    @Test func aCPUNeverStartedRefusesToJoin() {
      let cpu = CPULifecycle()
      let joined = cpu.join(attempt: 8)
      #expect(joined == .refused(.possible))
    }

    /// The slow side of both races, on threads: an AP joining while the boot CPU
    /// claims it for a retry, and again while it gives up. In every round exactly one
    /// side wins, and the final state is the winner's.
    @Test func joinRacingRetryAndGiveUpHasExactlyOneWinner() {
      nonisolated(unsafe) let cpu = UnsafeMutablePointer<CPULifecycle>.allocate(capacity: 1)
      defer { cpu.deallocate() }
      var wins = (ap: 0, bootCPU: 0)
      for round in 0..<500 {
        cpu.initialize(to: CPULifecycle())
        _ = cpu.pointee.claimForStart(attempt: 8)
        let retry = round % 2 == 0
        let (apWon, bootWon) = Race.run(
          { cpu.pointee.join(attempt: 8) == .joined },
          { retry ? cpu.pointee.claimForRetry() : cpu.pointee.giveUp() })
        #expect(apWon != bootWon, "round \(round): both or neither won")
        let state = cpu.pointee.state
        #expect(state == (apWon ? .online : retry ? .retrying : .failed))
        if apWon { wins.ap += 1 } else { wins.bootCPU += 1 }
        cpu.deinitialize(count: 1)
      }
      #expect(wins.ap + wins.bootCPU == 500)
    }
  }
}

/// Two closures started together, one on a new thread, as close to the same instant as
/// a spin barrier gets them.
enum Race {
  static func run(_ a: () -> Bool, _ b: @escaping () -> Bool) -> (Bool, Bool) {
    nonisolated(unsafe) let b = b
    let barrier = Gate()
    let second = ResultBox<Bool>()
    let done = Gate()
    let thread = Thread {
      barrier.arrive()
      barrier.pollUntil(2)
      second.value = b()
      done.arrive()
    }
    thread.start()
    barrier.arrive()
    barrier.pollUntil(2)
    let first = a()
    done.pollUntil(1)
    return (first, second.value ?? false)
  }
}
