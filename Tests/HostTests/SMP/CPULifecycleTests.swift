import Foundation
import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// The bring-up state machine: every race between the boot CPU and an AP ends with
  /// the CPU either online (the AP won) or owned by the boot CPU, never both, and an AP
  /// of an earlier attempt never joins a later one. A stop's claim ends every CPU that
  /// is not running in `stopped`, which nothing leaves.
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

    // MARK: The stop's claims (smp_send_stop, the crash stop)

    /// `claimForStop` from every state: a running CPU (online, dying) is left as it is
    /// to be sent the stop; a starting one (starting, retrying) and every other one is
    /// moved to `stopped`, its start-up attempt kept. Catches a running CPU taken to
    /// `stopped` behind its back (it would never be sent the stop), and a CPU left free
    /// to start.
    @Test(arguments: [
      (CPUState.possible, StopClaim.notRunning, CPUState.stopped),
      (.starting, .wasStarting, .stopped),
      (.retrying, .wasStarting, .stopped),
      (.online, .running, .online),
      (.failed, .notRunning, .stopped),
      (.dying, .running, .dying),
      (.dead, .notRunning, .stopped),
      (.stopped, .notRunning, .stopped),
    ])
    func claimForStopFromEachState(from state: CPUState, claim: StopClaim, to final: CPUState) {
      let cpu = CPULifecycle()
      cpu.drive(to: state)
      let attempt = cpu.attempt
      let claimed = cpu.claimForStop()
      #expect(claimed == claim && cpu.state == final && cpu.attempt == attempt)
    }

    /// `stopped` is final: no start, retry, give-up, dying or join leaves it, and the AP
    /// is told `.refused(.stopped)` (it parks and acknowledges). Catches any transition
    /// that accepts a stopped CPU.
    @Test(arguments: [CPUState.possible, .starting, .dead])
    func aCPUClaimedByAStopStaysStopped(from state: CPUState) {
      let cpu = CPULifecycle()
      cpu.drive(to: state)
      _ = cpu.claimForStop()
      let started = cpu.claimForStart(attempt: 9)
      let retried = cpu.claimForRetry()
      let givenUp = cpu.giveUp()
      let dying = cpu.beginDying()
      let joined = cpu.join(attempt: FakeSendStopMachine.startupAttempt)
      #expect(!started && !retried && !givenUp && !dying)
      #expect(joined == .refused(.stopped) && cpu.state == .stopped)
    }

    /// The boot CPU's re-arm after the retry's INIT finds the CPU claimed by a stop:
    /// false, and the CPU stays `stopped` (no STARTUP may follow). Catches a re-arm
    /// that traps or takes the CPU back to `starting`.
    @Test func rearmOfACPUAStopClaimedReturnsFalse() {
      let cpu = CPULifecycle()
      _ = cpu.claimForStart(attempt: 8)
      _ = cpu.claimForRetry()
      let claim = cpu.claimForStop()
      let rearmed = cpu.rearm(attempt: 10)
      #expect(claim == .wasStarting && !rearmed && cpu.state == .stopped)
      #expect(cpu.join(attempt: 10) == .refused(.stopped))
    }

    /// A running CPU's own last step, from `online` or `dying`: `stopped`, after which a
    /// stop's claim finds nothing to do and no start is possible. Catches a
    /// `markStopped` that leaves the CPU startable or looking online.
    @Test(arguments: [CPUState.online, .dying])
    func markStoppedEndsARunningCPU(from state: CPUState) {
      let cpu = CPULifecycle()
      cpu.drive(to: state)
      cpu.markStopped()
      let stateAfter = cpu.state
      let claim = cpu.claimForStop()
      let started = cpu.claimForStart(attempt: 9)
      #expect(stateAfter == .stopped && claim == .notRunning && !started)
    }

    /// An AP joining while a stop claims it, on threads, 300 rounds: either the join
    /// wins (the CPU is online and the claim says `.running`, so the stop sends it the
    /// stop) or the claim wins (`.wasStarting`, `stopped`, and the join is refused with
    /// `.refused(.stopped)`); never both, never neither. Catches a CPU that goes online
    /// after the claim.
    @Test func joinRacingClaimForStopHasExactlyOneWinner() {
      nonisolated(unsafe) let cpu = UnsafeMutablePointer<CPULifecycle>.allocate(capacity: 1)
      defer { cpu.deallocate() }
      for round in 0..<300 {
        cpu.initialize(to: CPULifecycle())
        _ = cpu.pointee.claimForStart(attempt: 8)
        var join = JoinOutcome.joined
        let claimResult = ResultBox<StopClaim>()
        let (apWon, stopWon) = Race.run(
          {
            join = cpu.pointee.join(attempt: 8)
            return join == .joined
          },
          {
            claimResult.value = cpu.pointee.claimForStop()
            return claimResult.value == .wasStarting
          })
        let state = cpu.pointee.state
        let claim = claimResult.value.map { "\($0)" } ?? "none"
        #expect(apWon != stopWon, "round \(round): join \(join), claim \(claim)")
        if apWon {
          #expect(claimResult.value == .running && state == .online, "round \(round)")
        } else {
          #expect(join == .refused(.stopped) && state == .stopped, "round \(round): \(join)")
        }
        cpu.deinitialize(count: 1)
      }
    }

    /// The boot CPU's re-arm racing a stop's claim of a CPU it owns for a retry, 300
    /// rounds: the claim always finds it starting (`.wasStarting`) and it always ends
    /// `stopped`, whichever came first; a re-arm that lost says false, and an AP of the
    /// retry is then refused. Catches a re-arm that overwrites the claim, or traps
    /// when the claim came between its load and its exchange.
    @Test func rearmRacingClaimForStopAlwaysEndsStopped() {
      nonisolated(unsafe) let cpu = UnsafeMutablePointer<CPULifecycle>.allocate(capacity: 1)
      defer { cpu.deallocate() }
      for round in 0..<300 {
        cpu.initialize(to: CPULifecycle())
        cpu.pointee.drive(to: .retrying)
        let (rearmed, claimedStarting) = Race.run(
          { cpu.pointee.rearm(attempt: 10) }, { cpu.pointee.claimForStop() == .wasStarting })
        #expect(claimedStarting && cpu.pointee.state == .stopped, "round \(round): rearm \(rearmed)")
        #expect(cpu.pointee.join(attempt: 10) == .refused(.stopped), "round \(round)")
        cpu.deinitialize(count: 1)
      }
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
