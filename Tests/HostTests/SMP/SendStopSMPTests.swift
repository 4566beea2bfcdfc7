import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// `smp_send_stop`'s retry loop (Kernel/SMP/SendStop.swift) on fake CPUs: attempt 1
  /// sends the stop vector, later attempts NMI to the CPUs still unacknowledged, each
  /// attempt's wait is bounded, and the caller waits on acknowledgements, not on the
  /// lifecycle state. Every other CPU is online unless a test says otherwise.
  @Suite("Send stop: retry loop")
  struct SendStopSMPTests {
    typealias Settings = SendStop<FakeSendStopPlatform>.Settings

    /// Catches a changed mapping (Linux x86: REBOOT_VECTOR first, then NMI_VECTOR).
    @Test func attemptOneSendsTheVectorAndLaterAttemptsNMI() {
      #expect(StopMechanism.forAttempt(1) == .vector)
      #expect(StopMechanism.forAttempt(2) == .nmi)
      #expect(StopMechanism.forAttempt(3) == .nmi)
      #expect(StopMechanism.forAttempt(10) == .nmi)
    }

    /// Every other CPU answers the vector: one attempt, no NMI, nothing failed, each
    /// acknowledged `.vector` and `stopped`; the caller stays online; the outcome is
    /// published; the caller's second call returns nil. Catches an NMI sent without
    /// need, an acknowledgement not waited for, a CPU missed by the claim, and a second
    /// call that stops again (or stops its caller).
    @Test(arguments: [0, 3])
    func responsiveCPUsStopOnTheVectorInOneAttempt(caller: Int) {
      FakeSendStopMachine.with(cpus: 4, settings: Settings(attempts: 3, timeoutNanoseconds: 500_000_000)) {
        machine in
        let others = (0..<4).filter { $0 != caller }
        guard let outcome = machine.stopOthers(from: caller) else {
          Issue.record("no outcome; \(machine.stateReport)")
          return
        }
        #expect(outcome.caller == CPUIndex(caller))
        #expect(outcome.attempts == 1)
        #expect(outcome.running == CPUSet(others.map { CPUIndex($0) }))
        #expect(outcome.starting.isEmpty && outcome.sentNMI.isEmpty && outcome.failed.isEmpty)
        for cpu in others {
          #expect(machine.acknowledgement(of: cpu) == .vector, "\(machine.cpus[cpu].summary)")
          #expect(machine.state(of: cpu) == .stopped)
          #expect(machine.acknowledgementTime(of: cpu) <= outcome.endNanoseconds)
          #expect(machine.cpus[cpu].stopPathRuns.load(ordering: .relaxed) == 1)
        }
        #expect(machine.state(of: caller) == .online)
        #expect(machine.requests.map(\.mechanism) == [.vector])
        #expect(machine.sendStop.outcome?.attempts == 1 && machine.sendStop.isInProgress)
        #expect(machine.log.filter { $0.contains("failed to stop") }.isEmpty, "\(machine.log)")
        let again = machine.run(on: caller) { machine.sendStop.stopOthers(.shutdown) == nil }
        #expect(again == true, "a second call on the stopping CPU returns nil at once")
        #expect(machine.requests.count == 1, "the second call sent nothing")
      }
    }

    /// CPU 2 has interrupts off: attempt 1 times out, attempt 2's NMI stops it. Catches
    /// no retry, a retry that sends the vector again, an NMI to CPUs that had already
    /// acknowledged, and a first attempt that does not wait its bound.
    @Test func aCPUWithInterruptsOffIsStoppedByTheSecondAttemptsNMI() {
      let timeout: UInt64 = 20_000_000
      FakeSendStopMachine.with(cpus: 4, settings: Settings(attempts: 2, timeoutNanoseconds: timeout)) {
        machine in
        machine.cpus[2].interruptsOn.store(false, ordering: .relaxed)
        guard let outcome = machine.stopOthers() else { return }
        #expect(outcome.attempts == 2, "\(machine.stateReport)")
        #expect(outcome.sentNMI == FakeSendStopMachine.set(2))
        #expect(outcome.failed.isEmpty, "\(machine.stateReport)")
        #expect(machine.acknowledgement(of: 2) == .nmi)
        #expect(machine.acknowledgement(of: 1) == .vector && machine.acknowledgement(of: 3) == .vector)
        #expect(machine.state(of: 2) == .stopped)
        #expect(machine.acknowledgementTime(of: 2) &- outcome.startNanoseconds >= timeout)
        #expect(machine.requests.map(\.mechanism) == [.vector, .nmi])
        #expect(machine.requests.last?.cpus == FakeSendStopMachine.set(2))
        #expect(machine.logLinesWith("Retrying SMP stop call").count == 1, "\(machine.log)")
      }
    }

    /// CPU 1 takes nothing at all: each attempt waits its full bound and no longer,
    /// then only CPU 1 is reported. Catches an unbounded wait, an attempt that gives up
    /// early, a wrong attempt count, and a failure report naming the wrong CPUs.
    @Test(arguments: [1, 2, 3])
    func aStuckCPUIsReportedAfterEveryAttemptWaitedItsBound(attempts: Int) {
      let timeout: UInt64 = 10_000_000
      FakeSendStopMachine.with(
        cpus: 3, settings: Settings(attempts: attempts, timeoutNanoseconds: timeout)
      ) { machine in
        machine.cpus[1].isStuck.store(true, ordering: .relaxed)
        let start = HostClock.now()
        guard let outcome = machine.stopOthers() else { return }
        let elapsed = HostClock.now() &- start
        #expect(outcome.attempts == attempts)
        #expect(outcome.failed == FakeSendStopMachine.set(1))
        #expect(outcome.sentNMI == (attempts > 1 ? FakeSendStopMachine.set(1) : CPUSet()))
        #expect(
          machine.acknowledgement(of: 2) == .vector && machine.acknowledgement(of: 1) == StopMechanism.none)
        #expect(machine.state(of: 1) == .online, "a CPU that did not stop is not marked stopped")
        let bound = UInt64(attempts) * timeout
        #expect(outcome.nanoseconds >= bound, "\(outcome.nanoseconds) ns")
        #expect(elapsed < bound + 150_000_000, "\(elapsed) ns for \(attempts) attempts of \(timeout) ns")
        #expect(machine.logLinesWith("smp: failed to stop secondary CPUs 1 ").count == attempts)
        #expect(machine.logLinesWith("Retrying SMP stop call").count == attempts - 1)
      }
    }

    /// The first stop vector to CPU 1 is lost on the way: attempt 2's NMI stops it.
    /// Catches a retry that trusts the first delivery.
    @Test func aLostStopVectorIsMadeUpByTheNMI() {
      FakeSendStopMachine.with(cpus: 3, settings: Settings(attempts: 2, timeoutNanoseconds: 20_000_000)) {
        machine in
        machine.cpus[1].dropNext(1, .vector)
        guard let outcome = machine.stopOthers() else { return }
        #expect(machine.cpus[1].vectorsDropped.load(ordering: .relaxed) == 1)
        #expect(outcome.attempts == 2 && outcome.sentNMI == FakeSendStopMachine.set(1))
        #expect(outcome.failed.isEmpty, "\(machine.stateReport)")
        #expect(machine.acknowledgement(of: 1) == .nmi && machine.acknowledgement(of: 2) == .vector)
      }
    }

    /// CPU 2 has interrupts off and the first NMI to it is lost: with three attempts the
    /// third (a second NMI) stops it; with two it is reported. Catches a loop that
    /// stops after the first NMI, or one that sends the vector again on attempt 3.
    @Test(arguments: [2, 3])
    func aLostNMIIsMadeUpByTheThirdAttempt(attempts: Int) {
      FakeSendStopMachine.with(
        cpus: 3, settings: Settings(attempts: attempts, timeoutNanoseconds: 20_000_000)
      ) { machine in
        machine.cpus[2].interruptsOn.store(false, ordering: .relaxed)
        machine.cpus[2].dropNext(1, .nmi)
        guard let outcome = machine.stopOthers() else { return }
        #expect(outcome.attempts == attempts)
        #expect(outcome.sentNMI == FakeSendStopMachine.set(2))
        #expect(machine.cpus[2].nmisDropped.load(ordering: .relaxed) == 1)
        #expect(machine.requests.map(\.mechanism) == [.vector] + Array(repeating: .nmi, count: attempts - 1))
        if attempts == 3 {
          #expect(outcome.failed.isEmpty, "\(machine.stateReport)")
          #expect(machine.acknowledgement(of: 2) == .nmi && machine.state(of: 2) == .stopped)
        } else {
          #expect(outcome.failed == FakeSendStopMachine.set(2))
        }
      }
    }

    /// CPU 1 is `stopped` at once but acknowledges 30 ms later, well inside the bound:
    /// the caller returns only after the acknowledgement, in one attempt. Catches a
    /// caller that waits on the online set or the lifecycle state instead of the
    /// acknowledgements (Linux: the stop waits for each CPU's own word that it stopped).
    @Test func theCallerWaitsForALateAcknowledgement() {
      let delay: UInt64 = 30_000_000
      FakeSendStopMachine.with(cpus: 3, settings: Settings(attempts: 2, timeoutNanoseconds: 500_000_000)) {
        machine in
        machine.cpus[1].ackDelayNanoseconds.store(delay, ordering: .relaxed)
        guard let outcome = machine.stopOthers() else { return }
        let acknowledged = machine.acknowledgementTime(of: 1)
        #expect(outcome.failed.isEmpty && outcome.attempts == 1 && outcome.sentNMI.isEmpty)
        #expect(machine.acknowledgement(of: 1) == .vector)
        #expect(acknowledged != 0 && acknowledged <= outcome.endNanoseconds)
        #expect(outcome.nanoseconds >= delay, "returned \(outcome.nanoseconds) ns after the claim")
      }
    }

    /// CPU 1 takes the vector but works 45 ms in its stop path, longer than two 10 ms
    /// attempts: the NMIs that follow reach it on its stop path and leave it be (`enter`
    /// says no); it runs its last steps once and acknowledges `.vector` within the
    /// attempts. Catches an NMI that restarts a stop path already under way.
    @Test func anNMIReachingACPUOnItsStopPathLeavesItBe() {
      FakeSendStopMachine.with(cpus: 2, settings: Settings(attempts: 20, timeoutNanoseconds: 10_000_000)) {
        machine in
        machine.cpus[1].ackDelayNanoseconds.store(45_000_000, ordering: .relaxed)
        guard let outcome = machine.stopOthers() else { return }
        let cpu = machine.cpus[1]
        #expect(outcome.failed.isEmpty && outcome.attempts >= 3, "\(outcome.attempts) attempts")
        #expect(outcome.sentNMI == FakeSendStopMachine.set(1))
        #expect(machine.acknowledgement(of: 1) == .vector)
        #expect(cpu.nmisWhileStopping.load(ordering: .relaxed) >= 1, "\(cpu.summary)")
        #expect(cpu.stopPathRuns.load(ordering: .relaxed) == 1)
      }
    }

    /// `stop_wait=forever`: the last attempt waits past its bound for a CPU that
    /// acknowledges after 60 ms (with 10 ms attempts); without it that CPU is reported.
    /// Catches the flag being ignored, or applied to every attempt (CPU 2, with
    /// interrupts off, would then never be sent its NMI and the call would hang).
    @Test(arguments: [false, true])
    func theLastAttemptWaitsWithoutBoundOnlyWhenAskedTo(forever: Bool) {
      let delay: UInt64 = 60_000_000
      let settings = Settings(attempts: 2, timeoutNanoseconds: 10_000_000, lastAttemptWaitsForever: forever)
      FakeSendStopMachine.with(cpus: 3, settings: settings) { machine in
        machine.cpus[1].ackDelayNanoseconds.store(delay, ordering: .relaxed)
        machine.cpus[2].interruptsOn.store(false, ordering: .relaxed)
        guard let outcome = machine.stopOthers() else { return }
        #expect(outcome.attempts == 2 && outcome.sentNMI.contains(CPUIndex(2)))
        #expect(machine.acknowledgement(of: 2) == .nmi, "\(machine.stateReport)")
        if forever {
          #expect(outcome.failed.isEmpty, "\(machine.stateReport)")
          #expect(machine.acknowledgementTime(of: 1) <= outcome.endNanoseconds)
          #expect(outcome.nanoseconds >= delay)
        } else {
          #expect(outcome.failed == FakeSendStopMachine.set(1))
          #expect(outcome.nanoseconds < delay)
        }
      }
    }

    /// No other CPU runs kernel code (possible, failed, dead, already stopped): no
    /// attempt, nothing sent, and every one of them is now `stopped`, so none can start.
    /// Catches an attempt made for nobody, and a claim that leaves a CPU startable.
    @Test func withNothingRunningNoAttemptIsMadeAndEveryCPUIsClaimed() {
      FakeSendStopMachine.with(states: [.online, .possible, .failed, .dead, .stopped]) { machine in
        guard let outcome = machine.stopOthers() else { return }
        #expect(outcome.attempts == 0 && outcome.running.isEmpty && outcome.starting.isEmpty)
        #expect(outcome.failed.isEmpty && machine.requests.isEmpty)
        #expect(outcome.endNanoseconds >= outcome.startNanoseconds)
        for cpu in 1..<5 {
          #expect(machine.state(of: cpu) == .stopped, "CPU \(cpu)")
          let started = machine.lifecycle(cpu).pointee.claimForStart(attempt: 9)
          #expect(!started, "CPU \(cpu) started after the stop")
        }
      }
    }

    /// A dying CPU runs kernel code: it is sent the stop and moves itself from `dying`
    /// to `stopped`. Catches a dying CPU treated as gone (Linux: it is still in the
    /// online mask until its teardown ends).
    @Test func aDyingCPUIsSentTheStopAndStopsItself() {
      FakeSendStopMachine.with(states: [.online, .dying, .online]) { machine in
        guard let outcome = machine.stopOthers() else { return }
        #expect(outcome.running == FakeSendStopMachine.set(1, 2) && outcome.failed.isEmpty)
        #expect(machine.acknowledgement(of: 1) == .vector && machine.state(of: 1) == .stopped)
      }
    }

    /// A dying CPU with interrupts off reports itself dead instead of taking the vector
    /// (it finished going down first): the stop counts it as stopped without an
    /// acknowledgement, and does not wait out its bound. Catches a stop that waits only
    /// on acknowledgements for a CPU that halted without one.
    @Test func aDyingCPUThatReportsDeadFirstCountsAsStopped() {
      FakeSendStopMachine.with(
        states: [.online, .dying], settings: Settings(attempts: 2, timeoutNanoseconds: 1_000_000_000)
      ) { machine in
        let cpu = machine.cpus[1]
        cpu.interruptsOn.store(false, ordering: .relaxed)
        machine.start(on: 1) { Self.reportDeadOnceSentTheStop(cpu) }
        guard let outcome = machine.stopOthers() else { return }
        #expect(outcome.running == FakeSendStopMachine.set(1))
        #expect(outcome.failed.isEmpty && outcome.attempts == 1, "\(machine.stateReport)")
        #expect(outcome.nanoseconds < 500_000_000)
        #expect(machine.acknowledgement(of: 1) == StopMechanism.none)
      }
    }

    /// The dying CPU's last steps, from its idle loop with interrupts off: once the stop
    /// vector is pending it reports itself dead and halts (takes nothing more).
    static func reportDeadOnceSentTheStop(_ cpu: FakeSendStopCPU) {
      _ = HostClock.poll(timeout: 2) { cpu.vectorsDelivered.load(ordering: .relaxed) > 0 }
      cpu.machine.lifecycle(cpu.index.rawValue).pointee.reportDead()
      cpu.isStuck.store(true, ordering: .relaxed)
    }
  }
}

extension FakeSendStopMachine {
  /// The logged lines containing `text`.
  func logLinesWith(_ text: String) -> [String] { log.filter { $0.contains(text) } }
}
