import LockstepKernel
import Testing

extension SMPTests {
  /// The refusals (`CrossCallError`) and the local shortcut of a call to oneself.
  @Suite("Call errors and local calls")
  struct CallErrorTests {
    @Test(arguments: [4, 5, 511, -1])
    func invalidCPUIsRefused(cpu: Int) {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 0)
        let records = RecordPool(tickets: [ticket], function: Calls.trace)
        let expected = CallOutcome.threw(.invalidCPU(CPUIndex(cpu)))
        #expect(
          machine.attempt(on: 0) {
            try machine.calls.callSingle(on: CPUIndex(cpu), Calls.trace, ticket.info, wait: true)
          } == expected)
        #expect(
          machine.attempt(on: 0) {
            try machine.calls.callSingle(on: CPUIndex(cpu), Calls.trace, ticket.info, wait: false)
          } == expected)
        #expect(
          machine.attempt(on: 0) { try machine.calls.callSingleAsync(on: CPUIndex(cpu), records[0]) }
            == expected)
        #expect(records.allUnlocked, "a refused record stays free")
        #expect(trace.runs.isEmpty)
      }
    }

    @Test func offlineCPUIsRefused() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 0)
        let records = RecordPool(tickets: [ticket], function: Calls.trace)
        machine.setOnline(2, false)
        let expected = CallOutcome.threw(.offline(CPUIndex(2)))
        #expect(
          machine.attempt(on: 0) {
            try machine.calls.callSingle(on: CPUIndex(2), Calls.trace, ticket.info, wait: true)
          } == expected)
        #expect(
          machine.attempt(on: 0) {
            try machine.calls.callSingle(on: CPUIndex(2), Calls.trace, ticket.info, wait: false)
          } == expected)
        #expect(
          machine.attempt(on: 3) { try machine.calls.callSingleAsync(on: CPUIndex(2), records[0]) }
            == expected)
        #expect(records.allUnlocked, "a refused record stays free")
        #expect(machine.interruptsRequested(for: 2) == 0)
        // The per-CPU async record of CPU 0 was not taken either: a later call works.
        #expect(
          machine.attempt(on: 0) {
            try machine.calls.callSingle(on: CPUIndex(1), Calls.trace, ticket.info, wait: false)
          } == .returned)
        #expect(trace.waitForRuns(1))
        #expect(trace.runs.map(\.cpu) == [1])
      }
    }

    @Test func callAnyWithoutAnOnlineCPUIsRefused() {
      FakeMachine.with { machine in
        let ticket = CallTicket(CallTrace(), id: 0)
        #expect(
          machine.attempt(on: 0) {
            try machine.calls.callAny(of: CPUSet(), Calls.trace, ticket.info, wait: true)
          } == .threw(.noOnlineCPU))
        machine.setOnline(2, false)
        machine.setOnline(3, false)
        let offline = CPUSet([CPUIndex(2), CPUIndex(3)])
        #expect(
          machine.attempt(on: 0) {
            try machine.calls.callAny(of: offline, Calls.trace, ticket.info, wait: true)
          } == .threw(.noOnlineCPU))
        #expect(
          machine.attempt(on: 1) {
            try machine.calls.callAny(of: offline, Calls.trace, ticket.info, wait: false)
          } == .threw(.noOnlineCPU))
        #expect(ticket.trace.runs.isEmpty)
      }
    }

    @Test(arguments: [true, false])
    func callSingleOnSelfRunsAtOnceWithInterruptsOff(wait: Bool) {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 5)
        let before = machine.unicastIPIs()
        let seen = machine.run(on: 2) {
          let error = caughtError {
            try machine.calls.callSingle(on: CPUIndex(2), Calls.trace, ticket.info, wait: wait)
          }
          return (error, trace.runs, FakePlatform.interruptsEnabled)
        }
        #expect(seen?.0 == nil)
        #expect(
          seen?.1 == [CallRun(id: 5, cpu: 2, interruptsOn: false)], "ran before returning, interrupts off")
        #expect(seen?.2 == true, "interrupts are back on afterwards")
        #expect(machine.unicastIPIs() == before, "no IPI for a local call")
        #expect(machine.interruptsRequested(for: 2) == 0)
      }
    }

    @Test func asyncCallOnSelfRunsAtOnceAndFreesTheRecord() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let records = RecordPool(tickets: [CallTicket(trace, id: 9)], function: Calls.trace)
        let seen = machine.run(on: 3) {
          let error = caughtError { try machine.calls.callSingleAsync(on: CPUIndex(3), records[0]) }
          return (error, trace.runs, records[0].pointee.isLocked)
        }
        #expect(seen?.0 == nil)
        #expect(seen?.1 == [CallRun(id: 9, cpu: 3, interruptsOn: false)])
        #expect(seen?.2 == false, "record free on return")
      }
    }

    @Test func callWithInterruptsOffWarnsOnce() {
      FakeMachine.with { machine in
        let ticket = CallTicket(CallTrace(), id: 0)
        _ = machine.run(on: 1) {
          FakePlatform.disableInterrupts()
          for _ in 0..<3 {
            try? machine.calls.callSingle(on: CPUIndex(2), Calls.trace, ticket.info, wait: true)
          }
          FakePlatform.enableInterrupts()
        }
        #expect(ticket.trace.runs.map(\.cpu) == [2, 2, 2])
        #expect(machine.logLines(containing: "with interrupts disabled").count == 1, "\(machine.log)")
        #expect(machine.logLines(containing: "CPU 1 makes a cross-CPU call").count == 1)
      }
    }
  }
}
