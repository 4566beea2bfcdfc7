import Glibc
import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// The stop's two races, many times each on a fresh machine (a fresh `SendStop`):
  /// two CPUs calling it at once, and an AP joining while the stop claims it.
  @Suite("Send stop: races")
  struct SendStopRaceSMPTests {
    /// CPUs 0 and 1 call `stopOthers` at once, interrupts off, 150 times; CPU 2 is a
    /// bystander. Each time exactly one returns an outcome; the other never returns:
    /// it stops itself, acknowledging `.lostTheRace`, and ends `stopped`; the bystander
    /// is stopped by the vector; nothing fails; the winner's second call returns nil.
    /// Catches two callers both proceeding (two stops sending to each other), a loser
    /// that returns or spins, and a loser the winner waits out as failed.
    @Test func ofTwoConcurrentCallersOneStopsTheOthers() {
      var wins = [0, 0]
      for round in 0..<150 {
        var winner: Int? = nil
        FakeSendStopMachine.with(
          cpus: 3, settings: .init(attempts: 2, timeoutNanoseconds: 1_000_000_000)
        ) { machine in
          winner = Self.raceTwoCallers(machine, round: round)
        }
        guard let winner else { break }  // One failing round tells the story.
        wins[winner] += 1
      }
      #expect(wins[0] + wins[1] == 150, "wins by CPU: \(wins)")
    }

    /// One round: returns the winning CPU, or nil after recording issues.
    static func raceTwoCallers(_ machine: FakeSendStopMachine, round: Int) -> Int? {
      let stop = machine.sendStop
      let gate = Gate()
      let outcomes = [ResultBox<SendStopOutcome?>(), ResultBox<SendStopOutcome?>()]
      let jobs = (0..<2).map { cpu in
        machine.start(on: cpu) {
          FakeSendStopPlatform.disableInterrupts()
          gate.arrive()
          // Not `relax()`: a caller has interrupts off, and the winner's NMI comes only
          // after a second.
          while gate.count < 2 { sched_yield() }
          outcomes[cpu].value = stop.stopOthers(.shutdown)
        }
      }
      guard HostClock.poll(timeout: 2, { jobs.contains { $0.wait(timeout: 0) } }) else {
        Issue.record("round \(round): neither caller returned; \(machine.stateReport)")
        return nil
      }
      let winner = jobs[0].wait(timeout: 0) ? 0 : 1
      let loser = 1 - winner
      let parked = HostClock.poll(timeout: 2) { machine.cpus[loser].isParked.load(ordering: .relaxed) }
      guard let outcome = outcomes[winner].value ?? nil else {
        Issue.record(
          "round \(round): CPU \(winner) returned nil, not an outcome (a caller that lost must stop itself); \(machine.stateReport)"
        )
        return nil
      }
      let again = machine.run(on: winner) { stop.stopOthers(.crash) == nil }
      let problems = Self.failed([
        (parked && !jobs[loser].wait(timeout: 0), "the loser, CPU \(loser), went on"),
        (outcome.caller == CPUIndex(winner), "the outcome names CPU \(outcome.caller.rawValue)"),
        (outcome.failed.isEmpty, "CPUs failed"),
        (machine.acknowledgement(of: loser) == .lostTheRace, "the loser did not acknowledge lostTheRace"),
        (machine.state(of: loser) == .stopped, "the loser is not stopped"),
        (machine.acknowledgement(of: 2) == .vector, "the bystander was not stopped by the vector"),
        (stop.outcome?.caller == CPUIndex(winner), "the published outcome is not the winner's"),
        (again == true, "the winner's second call did not return nil"),
      ])
      for problem in problems { Issue.record("round \(round): \(problem); \(machine.stateReport)") }
      return problems.isEmpty ? winner : nil
    }

    /// The messages of the checks that failed.
    static func failed(_ checks: [(Bool, String)]) -> [String] { checks.filter { !$0.0 }.map(\.1) }

    /// CPU 1 is an AP (STARTUP sent, `starting`) that goes online just as CPU 0 begins
    /// the stop, 200 times; in half the rounds it first looks for a stop (as APMain
    /// does), in the other half it joins head on (it looked before the stop began).
    /// Either it joined first, and is then a running CPU stopped by the vector, or the
    /// stop claimed it first, and its join is refused with `.refused(.stopped)` and it
    /// parks (`.parkedWhileStarting`); never both, never neither, and it ends `stopped`.
    /// Catches a CPU that goes online after the claim (and escapes the stop), and one
    /// the stop waits out as failed.
    @Test func anAPJoiningWhileTheStopClaimsItEndsStoppedEitherWay() {
      var tally: [FakeSendStopCPU.StartupPathEnd: Int] = [:]
      for round in 0..<200 {
        var end: FakeSendStopCPU.StartupPathEnd? = nil
        FakeSendStopMachine.with(
          states: [.online, .starting], settings: .init(attempts: 2, timeoutNanoseconds: 1_000_000_000)
        ) { machine in
          end = Self.raceJoin(machine, round: round)
        }
        guard let end else { break }  // One failing round tells the story.
        tally[end, default: 0] += 1
      }
      // Which side wins is up to the host's scheduler; the tally is for the message.
      #expect(tally.values.reduce(0, +) == 200, "\(tally)")
    }

    /// One round: where the AP's start-up path ended, or nil after recording issues.
    static func raceJoin(_ machine: FakeSendStopMachine, round: Int) -> FakeSendStopCPU.StartupPathEnd? {
      let stop = machine.sendStop
      let ap = machine.cpus[1]
      stop.noteStartup(of: CPUIndex(1), mayRun: true)
      let gate = Gate()
      machine.start(on: 1) {
        gate.arrive()
        while gate.count < 2 { sched_yield() }
        for _ in 0..<(round % 4) { sched_yield() }
        ap.runStartupPath(attempt: FakeSendStopMachine.startupAttempt, looksForStop: round % 2 == 0)
      }
      let outcome = machine.run(on: 0) { () -> SendStopOutcome? in
        FakeSendStopPlatform.disableInterrupts()
        gate.arrive()
        while gate.count < 2 { sched_yield() }
        for _ in 0..<(round / 4 % 3) { sched_yield() }
        return stop.stopOthers(.shutdown)
      }
      guard let outcome = outcome ?? nil else {
        Issue.record("round \(round): no outcome; \(machine.stateReport)")
        return nil
      }
      let one = FakeSendStopMachine.set(1)
      let end = ap.startupPathEnded
      let mechanism = machine.acknowledgement(of: 1)
      var checks = [
        ((outcome.running == one) != (outcome.starting == one), "CPU 1 both or neither running and starting"),
        (outcome.failed.isEmpty, "CPU 1 failed"),
        (machine.state(of: 1) == .stopped, "CPU 1 ended \(machine.state(of: 1))"),
      ]
      switch end {
      case .joined:
        checks.append((outcome.running == one, "joined, yet claimed as starting"))
        checks.append((mechanism == .vector, "joined, then acknowledged \(mechanism.name)"))
      case .refusedStopped, .parkedAtLook:
        checks.append((outcome.starting == one, "\(end), yet claimed as running"))
        checks.append((mechanism == .parkedWhileStarting, "\(end), then acknowledged \(mechanism.name)"))
        checks.append((ap.isParked.load(ordering: .relaxed), "\(end), yet not parked"))
      case .notRun, .refusedOther:
        checks.append((false, "the AP's start-up path ended \(end)"))
      }
      let problems = SendStopRaceSMPTests.failed(checks)
      for problem in problems { Issue.record("round \(round): \(problem); \(machine.stateReport)") }
      return problems.isEmpty ? end : nil
    }
  }
}
