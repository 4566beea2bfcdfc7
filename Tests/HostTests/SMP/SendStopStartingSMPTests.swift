import Glibc
import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// The stop against CPUs that are starting (Kernel/SMP/SendStop.swift, `unresolved`):
  /// each is claimed (`stopped`), so that it can never go online, and the stop waits for
  /// it only while a STARTUP may have reached it: its flag says so (`noteStartup`), or
  /// the CPU starting it (the starter) still runs and may send one. Such a CPU is never
  /// sent the stop itself: it parks on its own (`.parkedWhileStarting`).
  @Suite("Send stop: starting CPUs")
  struct SendStopStartingSMPTests {
    typealias Settings = SendStop<FakeSendStopPlatform>.Settings
    static let attempt = FakeSendStopMachine.startupAttempt

    /// CPU 2 is starting (or owned for a retry) and no STARTUP reached it: it is
    /// claimed, listed as starting, sent nothing, and not waited for (the bound is a
    /// second); afterwards it can neither start, be re-armed, nor join. Catches a stop
    /// that waits out an AP that cannot run, sends it an interrupt, or leaves it free
    /// to come online after the stop.
    @Test(arguments: [CPUState.starting, .retrying])
    func aCPUNoSTARTUPReachedIsClaimedAndNotWaitedFor(state: CPUState) {
      FakeSendStopMachine.with(
        states: [.online, .online, state], settings: Settings(attempts: 2, timeoutNanoseconds: 1_000_000_000)
      ) { machine in
        guard let outcome = machine.stopOthers() else { return }
        #expect(
          outcome.running == FakeSendStopMachine.set(1) && outcome.starting == FakeSendStopMachine.set(2))
        #expect(outcome.failed.isEmpty && outcome.attempts == 1, "\(machine.stateReport)")
        #expect(outcome.nanoseconds < 500_000_000, "\(outcome.nanoseconds) ns")
        #expect(machine.state(of: 2) == .stopped)
        #expect(Self.deliveries(to: machine.cpus[2]) == 0)
        let lifecycle = machine.lifecycle(2)
        let started = lifecycle.pointee.claimForStart(attempt: 9)
        let rearmed = state == .retrying && lifecycle.pointee.rearm(attempt: 10)
        let joined = lifecycle.pointee.join(attempt: Self.attempt)
        #expect(!started && !rearmed && joined == .refused(.stopped))
      }
    }

    /// A STARTUP reached CPU 2 and its AP parks 20 ms into the stop, having found it
    /// either at its look (`mustPark`) or through its refused join: the caller waits for
    /// that acknowledgement, in one attempt, without sending CPU 2 anything. Catches a
    /// stop that returns while an AP may still run start-up code.
    @Test(arguments: [true, false])
    func aCPUAStartupReachedIsWaitedForUntilItParks(looksForStop: Bool) {
      let delay: UInt64 = 20_000_000
      FakeSendStopMachine.with(
        states: [.online, .online, .starting],
        settings: Settings(attempts: 2, timeoutNanoseconds: 1_000_000_000)
      ) { machine in
        let stop = machine.sendStop
        let ap = machine.cpus[2]
        stop.noteStartup(of: CPUIndex(2), mayRun: true)
        machine.start(on: 2) {
          _ = HostClock.poll(timeout: 2) { stop.isInProgress }
          usleep(UInt32(delay / 1000))
          ap.runStartupPath(attempt: Self.attempt, looksForStop: looksForStop)
        }
        guard let outcome = machine.stopOthers() else { return }
        #expect(
          outcome.starting == FakeSendStopMachine.set(2) && outcome.failed.isEmpty, "\(machine.stateReport)")
        #expect(outcome.attempts == 1 && outcome.sentNMI.isEmpty)
        #expect(machine.acknowledgement(of: 2) == .parkedWhileStarting)
        #expect(machine.acknowledgementTime(of: 2) <= outcome.endNanoseconds)
        #expect(outcome.nanoseconds >= delay)
        #expect(ap.startupPathEnded == (looksForStop ? .parkedAtLook : .refusedStopped))
        #expect(Self.deliveries(to: ap) == 0)
      }
    }

    /// A STARTUP reached CPU 2 but its AP never parks (it hung in the trampoline): it is
    /// reported failed after both attempts, and never sent a vector or an NMI (the
    /// platform may send the stop only to CPUs that finished starting). Catches a stop
    /// that gives up on it silently, or NMIs a CPU still in start-up code.
    @Test func aCPUAStartupReachedThatNeverParksIsReportedFailed() {
      let timeout: UInt64 = 10_000_000
      FakeSendStopMachine.with(
        states: [.online, .online, .starting], settings: Settings(attempts: 2, timeoutNanoseconds: timeout)
      ) { machine in
        machine.sendStop.noteStartup(of: CPUIndex(2), mayRun: true)
        guard let outcome = machine.stopOthers() else { return }
        #expect(outcome.failed == FakeSendStopMachine.set(2) && outcome.attempts == 2)
        #expect(outcome.sentNMI.isEmpty && Self.deliveries(to: machine.cpus[2]) == 0)
        #expect(machine.requests.count == 1 && machine.requests.first?.cpus == FakeSendStopMachine.set(1))
        #expect(outcome.nanoseconds >= 2 * timeout)
        #expect(machine.logLinesWith("NMI to 0, the rest starting").count == 1, "\(machine.log)")
        #expect(machine.state(of: 2) == .stopped)
      }
    }

    /// CPU 1 is in the middle of starting CPU 2 (`startupBegins`; no STARTUP yet) with
    /// interrupts off. CPU 2 stays unresolved while its starter runs, since the starter
    /// may still send a STARTUP; once attempt 2's NMI stops the starter, CPU 2 is
    /// resolved without a word from it. Catches a stop that trusts the flag while the
    /// starter can still change it (attempt 1 would not list CPU 2 as failed), and one
    /// that never lets CPU 2 go once the starter stopped.
    @Test func aStartingCPUIsResolvedOnceItsStarterStops() {
      FakeSendStopMachine.with(
        states: [.online, .online, .starting], settings: Settings(attempts: 2, timeoutNanoseconds: 20_000_000)
      ) { machine in
        let stop = machine.sendStop
        let began = Gate()
        machine.start(on: 1) {
          FakeSendStopPlatform.disableInterrupts()
          stop.startupBegins()
          began.arrive()
          // The starter busy with interrupts off: only the NMI gets in (and parks it).
          FakeSendStopPlatform.spin(timeout: 5) { false }
        }
        guard began.pollUntil(1), let outcome = machine.stopOthers() else { return }
        #expect(outcome.attempts == 2 && outcome.sentNMI == FakeSendStopMachine.set(1))
        #expect(outcome.failed.isEmpty, "\(machine.stateReport)")
        #expect(
          machine.acknowledgement(of: 1) == .nmi && machine.acknowledgement(of: 2) == StopMechanism.none)
        #expect(machine.logLinesWith("failed to stop secondary CPUs 1-2 ").count == 1, "\(machine.log)")
      }
    }

    /// CPU 1 began starting CPU 2 (no STARTUP yet) and then hung: CPU 2 is reported with
    /// it, since the hung starter may still send a STARTUP. If CPU 1 had finished the
    /// start-up first (`startupEnds`), CPU 2 is resolved and only CPU 1 fails. Catches a
    /// stop that ignores the starter, and one that ignores the end of a start-up.
    @Test(arguments: [false, true])
    func aHungStarterKeepsItsAPUnresolvedUnlessItsStartUpEnded(ended: Bool) {
      FakeSendStopMachine.with(
        states: [.online, .online, .starting], settings: Settings(attempts: 2, timeoutNanoseconds: 10_000_000)
      ) { machine in
        let stop = machine.sendStop
        let cpu = machine.cpus[1]
        let hung = machine.run(on: 1) {
          stop.startupBegins()
          if ended { stop.startupEnds() }
          cpu.isStuck.store(true, ordering: .relaxed)
          return true
        }
        guard hung == true, let outcome = machine.stopOthers() else { return }
        #expect(outcome.failed == (ended ? FakeSendStopMachine.set(1) : FakeSendStopMachine.set(1, 2)))
        #expect(outcome.starting == FakeSendStopMachine.set(2) && machine.state(of: 2) == .stopped)
      }
    }

    /// The caller itself was starting CPU 1 (a panic in the middle of a start-up): it
    /// sends no STARTUP any more, so CPU 1 is resolved at once when none reached it, and
    /// waited for (then reported) when one did. Catches a stop waiting on itself as a
    /// starter.
    @Test(arguments: [false, true])
    func theCallerAsStarterIsQuiet(mayRun: Bool) {
      FakeSendStopMachine.with(
        states: [.online, .starting], settings: Settings(attempts: 1, timeoutNanoseconds: 10_000_000)
      ) { machine in
        let stop = machine.sendStop
        stop.noteStartup(of: CPUIndex(1), mayRun: mayRun)
        let outcome = machine.run(on: 0) { () -> SendStopOutcome? in
          FakeSendStopPlatform.disableInterrupts()
          stop.startupBegins()
          return stop.stopOthers(.crash)
        }
        guard let outcome = outcome ?? nil else { return }
        #expect(outcome.starting == FakeSendStopMachine.set(1) && outcome.reason == .crash)
        #expect(outcome.attempts == (mayRun ? 1 : 0))
        #expect(outcome.failed == (mayRun ? FakeSendStopMachine.set(1) : CPUSet()))
      }
    }

    /// CPU 1 is retrying CPU 2 (APStartup.retry: `claimForRetry`, INIT, the 10 ms
    /// wait, `rearm`) when the stop begins: the stop claims CPU 2 out of `retrying`, the
    /// re-arm then says no, so no STARTUP goes out, and the stop does not wait for CPU 2
    /// once CPU 1 has stopped. Catches a re-arm that takes a stopped CPU back to
    /// `starting` (it would be started after the stop looked at it).
    @Test func aRetryInProgressIsNotReArmedAfterTheClaim() {
      FakeSendStopMachine.with(
        states: [.online, .online, .starting],
        settings: Settings(attempts: 2, timeoutNanoseconds: 1_000_000_000)
      ) { machine in
        let stop = machine.sendStop
        let starter = machine.cpus[1]
        let lifecycle = machine.lifecycle(2)
        let rearmed = ResultBox<Bool>()
        let owned = Gate()
        machine.start(on: 1) {
          FakeSendStopPlatform.disableInterrupts()
          stop.startupBegins()
          _ = lifecycle.pointee.claimForRetry()
          stop.noteStartup(of: CPUIndex(2), mayRun: false)  // The INIT.
          owned.arrive()
          // The SDM's wait, until the stop has claimed every CPU and sent its vector.
          _ = HostClock.poll(timeout: 2) { starter.vectorsDelivered.load(ordering: .relaxed) > 0 }
          rearmed.value = lifecycle.pointee.rearm(attempt: 10)
          if rearmed.value == true { stop.noteStartup(of: CPUIndex(2), mayRun: true) }
          stop.startupEnds()
          FakeSendStopPlatform.enableInterrupts()  // Takes the stop vector.
        }
        guard owned.pollUntil(1), let outcome = machine.stopOthers() else { return }
        #expect(rearmed.value == false, "CPU 2 re-armed after the stop claimed it")
        #expect(
          outcome.starting == FakeSendStopMachine.set(2) && outcome.failed.isEmpty, "\(machine.stateReport)")
        #expect(machine.acknowledgement(of: 1) == .vector && machine.state(of: 2) == .stopped)
      }
    }

    /// The stop sends the vector to CPU 2 while it is dying; CPU 2 reports itself dead
    /// instead of taking it (it finished going down first), which the stop counts as
    /// stopped. CPU 1, busy with interrupts off in CPU hotplug, then starts CPU 2 again
    /// (`claimForStart` from `dead`) and sends it a STARTUP before attempt 2's NMI stops
    /// CPU 1 (it waits for attempt 1 to end, so that the stop has seen CPU 2 dead).
    /// The stop's promise (CPULifecycle.swift: `stopped` is final; "no CPU can start, or
    /// finish starting, once a stop has looked at it") needs either the start refused or
    /// CPU 2 waited for while a STARTUP may have reached it. Before the stop claimed a
    /// CPU it found dead, neither held: the stop returned with nothing failed while CPU 2
    /// was `starting` with a STARTUP on its way. Now the claim comes first, and the
    /// restart is refused.
    @Test func aCPUFoundDeadCannotBeStartedAgainBehindTheStop() {
      FakeSendStopMachine.with(
        states: [.online, .online, .dying], settings: Settings(attempts: 2, timeoutNanoseconds: 50_000_000)
      ) { machine in
        let stop = machine.sendStop
        let dying = machine.cpus[2]
        dying.interruptsOn.store(false, ordering: .relaxed)
        machine.start(on: 2) { SendStopSMPTests.reportDeadOnceSentTheStop(dying) }
        let restarted = ResultBox<Bool>()
        let busy = Gate()
        machine.start(on: 1) {
          FakeSendStopPlatform.disableInterrupts()
          busy.arrive()
          // Once attempt 1 is over with CPU 2 resolved (found dead): only CPU 1 failed.
          _ = HostClock.poll(timeout: 2) { !machine.logLinesWith("secondary CPUs 1 (CPU 0 waited").isEmpty }
          stop.startupBegins()
          restarted.value = machine.lifecycle(2).pointee.claimForStart(attempt: 9)
          if restarted.value == true { stop.noteStartup(of: CPUIndex(2), mayRun: true) }
          FakeSendStopPlatform.spin(timeout: 5) { false }  // Until the NMI parks it.
        }
        guard busy.pollUntil(1), let outcome = machine.stopOthers() else { return }
        #expect(machine.acknowledgement(of: 1) == .nmi, "\(machine.stateReport)")
        let waitedFor = outcome.failed.contains(CPUIndex(2))
        #expect(
          restarted.value == false || waitedFor, "CPU 2 started behind the stop; \(machine.stateReport)")
        #expect(machine.state(of: 2) == .stopped)
      }
    }

    /// Vectors and NMIs that reached `cpu` or were dropped on the way.
    static func deliveries(to cpu: FakeSendStopCPU) -> Int {
      cpu.vectorsDelivered.load(ordering: .relaxed) + cpu.nmisDelivered.load(ordering: .relaxed)
        + cpu.vectorsDropped.load(ordering: .relaxed) + cpu.nmisDropped.load(ordering: .relaxed)
    }
  }
}
