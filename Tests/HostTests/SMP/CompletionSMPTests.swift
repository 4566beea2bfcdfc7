import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// `Completion` across fake CPUs: wake-ups racing sleeps, none lost.
  @Suite("Completion on fake CPUs")
  struct CompletionSMPTests {
    /// The completion under test.
    typealias TestCompletion = Completion<FakeSchedPlatform>

    /// A ping completion, a pong completion and how far each side got.
    final class Game: @unchecked Sendable {
      /// Completed by the pinger, waited for by the answerer.
      let ping = TestCompletion()
      /// Completed by the answerer, waited for by the pinger.
      let pong = TestCompletion()
      /// Rounds the pinger started.
      let pings = Atomic<Int>(0)
      /// Rounds the answerer answered.
      let pongs = Atomic<Int>(0)

      /// Where the game stopped, for a failure message.
      var progress: String {
        "(pings \(pings.load(ordering: .relaxed)), pongs \(pongs.load(ordering: .relaxed)))"
      }
    }

    /// 10 000 rounds between CPU 0 and CPU 1: each side completes, then waits for the
    /// other. A lost wake-up leaves both asleep; the bound turns that into a failure
    /// that says at which round.
    @Test func tenThousandPingPongRoundsLoseNone() {
      let rounds = 10_000
      FakeSchedMachine.with(cpus: 2) { machine in
        let game = Game()
        let scheduler = machine.scheduler
        let answerer = machine.run("pong", on: 1) {
          for _ in 0..<rounds {
            game.ping.wait(in: scheduler)
            game.pongs.add(1, ordering: .relaxed)
            game.pong.complete(in: scheduler)
          }
        }
        let server = machine.run("ping", on: 0) {
          for _ in 0..<rounds {
            game.pings.add(1, ordering: .relaxed)
            game.ping.complete(in: scheduler)
            game.pong.wait(in: scheduler)
          }
        }
        machine.waitForAll([server, answerer], timeout: 30, game.progress)
        let pongs = game.pongs.load(ordering: .relaxed)
        #expect(pongs == rounds)
      }
    }

    /// Six waiters on three CPUs sleep on one completion; `completeAll` from a fourth
    /// CPU wakes every one, and a second wait of each passes at once.
    @Test func completeAllWakesEveryWaiter() {
      FakeSchedMachine.with(cpus: 4) { machine in
        let gate = TestCompletion()
        let scheduler = machine.scheduler
        let waiters = (0..<6).map { index in
          machine.run("waiter", index, on: index % 3) {
            gate.wait(in: scheduler)
            gate.wait(in: scheduler)
          }
        }
        let opener = machine.run("opener", on: 3) {
          // Every waiter asleep first, so completeAll has all six to wake.
          let asleep = FakeSchedPlatform.spin { waiters.allSatisfy { $0.thread.pointee.state == .sleeping } }
          if !asleep { machine.append(log: "opener: not every waiter fell asleep") }
          gate.completeAll(in: scheduler)
        }
        machine.waitForAll([opener] + waiters)
        #expect(!machine.log.contains { $0.hasPrefix("opener") })
      }
    }

    /// Two completions before anyone waits let two waits pass without sleeping; the
    /// third sleeps until a third completion.
    @Test func completionsBeforeWaitAreCountedNotLost() {
      FakeSchedMachine.with(cpus: 2) { machine in
        let done = TestCompletion()
        let scheduler = machine.scheduler
        let thirdStarted = Atomic<Bool>(false)
        let sleptInThird = Atomic<Bool>(false)
        let completer = machine.run("completer", on: 0) {
          done.complete(in: scheduler)
          done.complete(in: scheduler)
        }
        guard machine.waitForAll([completer]) else { return }
        let waiter = machine.run("waiter", on: 1) {
          done.wait(in: scheduler)
          done.wait(in: scheduler)
          thirdStarted.store(true, ordering: .releasing)  // Pairs with the acquire below.
          done.wait(in: scheduler)
        }
        let third = machine.run("third", on: 0) {
          // Stops early if the third wait wrongly passed and the waiter ended.
          FakeSchedPlatform.spin {
            waiter.isFinished
              || (thirdStarted.load(ordering: .acquiring) && waiter.thread.pointee.state == .sleeping)
          }
          sleptInThird.store(!waiter.isFinished, ordering: .relaxed)
          done.complete(in: scheduler)
        }
        machine.waitForAll([waiter, third])
        let slept = sleptInThird.load(ordering: .relaxed)
        #expect(slept, "the third wait passed with only two completions")
      }
    }
  }
}
