import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// Waiting: CPUs that wait for each other with interrupts off, and the CSD watchdog.
  @Suite("Waiting and the CSD watchdog")
  struct CallWaitTests {
    /// What one CPU saw in the mutual-wait tests.
    struct WaitResult: Equatable {
      /// The call did not throw.
      var succeeded = false
      /// Its own function had run when the call returned.
      var sawOwnRun = false
      /// Call interrupts it took before turning interrupts back on (must be 0: the
      /// calls it ran were served from its wait loop).
      var interruptsTaken = -1
    }

    @Test func twoCPUsCallingEachOtherWithInterruptsOffComplete() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let tickets = (0..<2).map { CallTicket(trace, id: $0) }
        let gate = Gate()
        let results = (0..<2).map { _ in ResultBox<WaitResult>() }
        let jobs = (0..<2).map { me in
          machine.start(on: me) {
            FakePlatform.disableInterrupts()
            gate.arrive()
            gate.spinUntil(2)
            var result = WaitResult()
            result.succeeded =
              caughtError {
                try machine.calls.callSingle(on: CPUIndex(1 - me), Calls.trace, tickets[me].info, wait: true)
              } == nil
            result.sawOwnRun = trace.ids.contains(me)
            result.interruptsTaken = machine.cpus[me].interruptsTaken.load(ordering: .relaxed)
            FakePlatform.enableInterrupts()
            results[me].value = result
          }
        }
        for job in jobs { machine.finish(job) }
        let expected = WaitResult(succeeded: true, sawOwnRun: true, interruptsTaken: 0)
        #expect(results.map(\.value) == [expected, expected])
        #expect(Set(trace.runs.map { "\($0.id)@\($0.cpu)" }) == ["0@1", "1@0"])
        #expect(!trace.anyRanWithInterruptsOn)
      }
    }

    @Test func allCPUsCallingOthersWithInterruptsOffComplete() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let tickets = (0..<4).map { CallTicket(trace, id: $0) }
        let gate = Gate()
        let jobs = (0..<4).map { me in
          machine.start(on: me) {
            FakePlatform.disableInterrupts()
            gate.arrive()
            gate.spinUntil(4)
            machine.calls.callOthers(Calls.trace, tickets[me].info, wait: true)
            FakePlatform.enableInterrupts()
          }
        }
        for job in jobs { machine.finish(job) }
        #expect(trace.counts(cpuCount: 4) == [3, 3, 3, 3])
        for me in 0..<4 {
          let targets = trace.runs.filter { $0.id == me }.map(\.cpu).sorted()
          #expect(targets == (0..<4).filter { $0 != me }, "calls of CPU \(me)")
        }
      }
    }

    @Test func aWaiterWithInterruptsOnNapsAndIsWokenByTheTarget() {
      FakeMachine.with { machine in
        let ticket = CallTicket(CallTrace(), id: 0)
        let payload = machine.run(on: 0) {
          try? machine.calls.callSingle(on: CPUIndex(1), Calls.slowlyWritePayload, ticket.info, wait: true)
          return ticket.payload
        }
        #expect(payload == 42)
        // The 20 ms function outlasts the spin phase: CPU 0 napped and CPU 1 woke it.
        #expect(machine.unicastIPIs(to: [0]) == 1, "one wake-up IPI to the napping sender")
        #expect(machine.cpus[0].interruptsTaken.load(ordering: .relaxed) == 1)
      }
    }

    @Test func aWaiterWithInterruptsOffSpinsAndGetsNoWakeUp() {
      FakeMachine.with { machine in
        let ticket = CallTicket(CallTrace(), id: 0)
        let payload = machine.run(on: 0) {
          FakePlatform.disableInterrupts()
          try? machine.calls.callSingle(on: CPUIndex(1), Calls.slowlyWritePayload, ticket.info, wait: true)
          FakePlatform.enableInterrupts()
          return ticket.payload
        }
        #expect(payload == 42)
        #expect(machine.unicastIPIs(to: [0]) == 0, "no nap, so no wake-up")
        #expect(machine.cpus[0].napsTimedOut.load(ordering: .relaxed) == 0)
      }
    }

    /// The watchdog lines `machine` logged, checked against waiting CPU 0 and `target`.
    static func expectWatchdogReport(_ machine: FakeMachine, target: Int) {
      let reports = machine.logLines(containing: "csd: CPU 0 waiting")
      #expect(reports.count == 1, "\(machine.log)")
      #expect(reports.first?.contains("for CPU \(target) ") == true, "\(reports)")
      #expect(reports.first?.contains("re-sending the IPI") == true, "\(reports)")
      let late = machine.logLines(containing: "csd: CPU 0: call to CPU \(target) completed late")
      #expect(late.count == 1, "\(machine.log)")
      #expect(machine.calls.statistics.watchdogReports.load(ordering: .relaxed) == 1)
      #expect(machine.calls.statistics.lateCompletions.load(ordering: .relaxed) == 1)
    }

    @Test func watchdogResendsALostIPI() {
      FakeMachine.with(watchdogTimeout: 50_000_000) { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 0)
        machine.dropNextIPIs(1, to: 1)
        let start = HostClock.now()
        #expect(
          machine.attempt(on: 0) {
            try machine.calls.callSingle(on: CPUIndex(1), Calls.trace, ticket.info, wait: true)
          } == .returned)
        #expect(HostClock.milliseconds(since: start) >= 50)
        #expect(trace.runs.map(\.cpu) == [1])
        #expect(machine.cpus[1].ipisDropped.load(ordering: .relaxed) == 1)
        #expect(machine.cpus[1].ipisDelivered.load(ordering: .relaxed) == 1, "the re-sent IPI")
        Self.expectWatchdogReport(machine, target: 1)
      }
    }

    /// CPU 0 calls CPU 2 and waits while CPU 2 spins `seconds` with interrupts off;
    /// checks that the call returned, ran once on CPU 2 and drew one watchdog report.
    /// Returns how long the call took, in milliseconds.
    static func callATargetBusyWithInterruptsOff(_ machine: FakeMachine, seconds: Double) -> Double {
      let trace = CallTrace()
      let ticket = CallTicket(trace, id: 0)
      let gate = Gate()
      let busy = machine.start(on: 2) {
        FakePlatform.disableInterrupts()
        gate.arrive()
        FakePlatform.spin(for: seconds)
        FakePlatform.enableInterrupts()
      }
      gate.pollUntil(1)
      let start = HostClock.now()
      #expect(
        machine.attempt(on: 0) {
          try machine.calls.callSingle(on: CPUIndex(2), Calls.trace, ticket.info, wait: true)
        } == .returned)
      let took = HostClock.milliseconds(since: start)
      machine.finish(busy)
      #expect(trace.runs.map(\.cpu) == [2])
      Self.expectWatchdogReport(machine, target: 2)
      return took
    }

    @Test func watchdogReportsATargetWithInterruptsOff() {
      FakeMachine.with(watchdogTimeout: 50_000_000) { machine in
        let took = Self.callATargetBusyWithInterruptsOff(machine, seconds: 0.2)
        #expect(took >= 100, "returned before CPU 2 took interrupts")
      }
    }

    /// A bound of 1 ms against a target busy for 300 ms with interrupts off: one
    /// report, no flood of reminders (at most one a second), and the call completes.
    /// Before the rate limit, a tiny bound printed a reminder every 5 ms.
    @Test func aTinyWatchdogBoundDoesNotFloodTheLog() {
      FakeMachine.with(watchdogTimeout: 1_000_000) { machine in
        _ = Self.callATargetBusyWithInterruptsOff(machine, seconds: 0.3)
        #expect(machine.logLines(containing: "still waiting").count <= 1, "\(machine.log)")
      }
    }

    @Test func noWatchdogReportForAPromptCall() {
      FakeMachine.with(watchdogTimeout: 1_000_000_000) { machine in
        let ticket = CallTicket(CallTrace(), id: 0)
        _ = machine.run(on: 0) { machine.calls.onEachCPU(Calls.trace, ticket.info, wait: true) }
        #expect(machine.logLines(containing: "csd:").isEmpty)
        #expect(machine.calls.statistics.watchdogReports.load(ordering: .relaxed) == 0)
      }
    }
  }
}
