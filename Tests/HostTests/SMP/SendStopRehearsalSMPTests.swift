import Glibc
import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// The benchmarks' rehearsal (`SendStop.rehearse`, `acknowledgeRehearsal`,
  /// `endRehearsal`): the stop's whole path up to the acknowledgements, after which the
  /// stopped CPUs go back to what they were doing and nothing has changed state.
  @Suite("Send stop: rehearsal")
  struct SendStopRehearsalSMPTests {
    /// CPU 1 answers the vector, CPU 2 (interrupts off) the NMI, CPU 3 is starting with
    /// no STARTUP, CPU 4 is dead. Two rehearsals in a row give the same outcome, every
    /// CPU returns from each once it ends, and no lifecycle state moves; the vector
    /// left pending on CPU 2 is ignored once interrupts come back; then the real stop
    /// still proceeds and stops everyone. Catches a rehearsal that claims CPUs (CPU 3
    /// would be `stopped`), records or a claim left behind by `endRehearsal` (the
    /// second rehearsal would make no attempt, or find CPUs already entered, or the
    /// real stop would return nil), and stopped CPUs that never return.
    @Test func rehearsalsStopNobodyForGoodAndLeaveTheRealStopIntact() {
      FakeSendStopMachine.with(
        states: [.online, .online, .online, .starting, .dead],
        settings: .init(attempts: 2, timeoutNanoseconds: 20_000_000)
      ) { machine in
        let stop = machine.sendStop
        machine.cpus[2].interruptsOn.store(false, ordering: .relaxed)
        for round in 1...2 { Self.rehearse(machine, round: round) }
        #expect(machine.state(of: 3) == .starting && machine.state(of: 4) == .dead)
        #expect(machine.log.isEmpty, "a rehearsal logs nothing: \(machine.log)")

        let cpu2 = machine.cpus[2]
        cpu2.interruptsOn.store(true, ordering: .relaxed)
        cpu2.poke()
        let ignored = HostClock.poll(timeout: 2) { cpu2.strayVectors.load(ordering: .relaxed) == 1 }
        #expect(ignored && machine.state(of: 2) == .online, "\(cpu2.summary)")

        guard let outcome = machine.stopOthers() else {
          Issue.record("the real stop after the rehearsals returned nil; \(machine.stateReport)")
          return
        }
        #expect(outcome.attempts == 1 && outcome.failed.isEmpty, "\(machine.stateReport)")
        #expect(machine.acknowledgement(of: 1) == .vector && machine.acknowledgement(of: 2) == .vector)
        #expect((1...4).allSatisfy { machine.state(of: $0) == .stopped })
        #expect(!stop.isRehearsal)
      }
    }

    /// CPU 1 takes a rehearsal's vector but acknowledges only after the rehearsal gave
    /// up on it (40 ms, against one 10 ms attempt) and ended, as `SMPStop.rehearse` ends
    /// it at once. The real stop that follows (CPU 1 now hung, taking nothing) must still
    /// send it the stop and report it. Before acknowledgements carried their stop's
    /// generation, the late one outlived `endRehearsal`: the real stop counted CPU 1 as
    /// acknowledged from the start, made no attempt, and returned with nothing failed
    /// while CPU 1 ran on.
    @Test func aLateRehearsalAcknowledgementDoesNotStopACPUForTheRealStop() {
      FakeSendStopMachine.with(
        cpus: 2, settings: .init(attempts: 1, timeoutNanoseconds: 10_000_000)
      ) { machine in
        let stop = machine.sendStop
        let cpu = machine.cpus[1]
        cpu.ackDelayNanoseconds.store(40_000_000, ordering: .relaxed)
        let rehearsal = machine.run(on: 0) { () -> SendStopOutcome? in
          FakeSendStopPlatform.disableInterrupts()
          let outcome = stop.rehearse(.shutdown)
          stop.endRehearsal()
          return outcome
        }
        #expect(rehearsal??.failed == FakeSendStopMachine.set(1))
        #expect(!stop.isInProgress)
        usleep(60_000)  // CPU 1's 40 ms of work are over: it has acknowledged, late.
        let late = machine.acknowledgement(of: 1)
        cpu.isStuck.store(true, ordering: .relaxed)
        guard let outcome = machine.stopOthers() else { return }
        #expect(outcome.running == FakeSendStopMachine.set(1))
        #expect(outcome.attempts == 1, "late acknowledgement \(late.name); \(machine.stateReport)")
        #expect(outcome.failed == FakeSendStopMachine.set(1), "CPU 1 was neither stopped nor reported")
      }
    }

    /// One rehearsal from CPU 0 and its end; checks the outcome and that CPUs 1 and 2
    /// return from it.
    static func rehearse(_ machine: FakeSendStopMachine, round: Int) {
      let stop = machine.sendStop
      let outcome = machine.run(on: 0) { () -> SendStopOutcome? in
        FakeSendStopPlatform.disableInterrupts()
        return stop.rehearse(.shutdown)
      }
      guard let outcome = outcome ?? nil else {
        Issue.record("rehearsal \(round) returned nil; \(machine.stateReport)")
        return
      }
      #expect(outcome.attempts == 2 && outcome.failed.isEmpty, "rehearsal \(round): \(machine.stateReport)")
      #expect(
        outcome.running == FakeSendStopMachine.set(1, 2) && outcome.starting == FakeSendStopMachine.set(3))
      #expect(outcome.sentNMI == FakeSendStopMachine.set(2))
      #expect(stop.isRehearsal && stop.outcome?.attempts == 2)
      #expect(machine.acknowledgement(of: 1) == .vector && machine.acknowledgement(of: 2) == .nmi)
      #expect(
        machine.state(of: 1) == .online && machine.state(of: 2) == .online
          && machine.state(of: 3) == .starting)
      _ = machine.run(on: 0) { stop.endRehearsal() }
      let returned = HostClock.poll(timeout: 2) {
        machine.cpus[1...2].allSatisfy { $0.rehearsalsReturned.load(ordering: .relaxed) == round }
      }
      #expect(returned, "rehearsal \(round): \(machine.stateReport)")
      #expect(!stop.isInProgress && stop.outcome == nil)
      #expect(machine.acknowledgement(of: 1) == StopMechanism.none, "the records are cleared")
    }
  }
}
