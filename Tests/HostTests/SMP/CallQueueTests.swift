import LockstepKernel
import Testing

extension SMPTests {
  /// The call queue and the record hand-over: arrival order, one interrupt per burst,
  /// LOCK and WAIT.
  @Suite("Call queue and records")
  struct CallQueueTests {
    /// Pushes `records` to CPU 1 from CPUs 0, 2 and 3 in turn, one after another, so the
    /// arrival order is the index order. Expects every push to succeed.
    static func pushInTurn(_ machine: FakeMachine, _ records: RecordPool) {
      for index in 0..<records.count {
        let sender = [0, 2, 3][index % 3]
        let outcome = machine.attempt(on: sender) {
          try machine.calls.callSingleAsync(on: CPUIndex(1), records[index])
        }
        #expect(outcome == .returned, "push \(index) from CPU \(sender)")
      }
    }

    @Test func asyncCallsRunInArrivalOrder() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let records = RecordPool(tickets: (0..<12).map { CallTicket(trace, id: $0) }, function: Calls.trace)
        _ = machine.run(on: 1) { FakePlatform.disableInterrupts() }
        Self.pushInTurn(machine, records)
        #expect(trace.runs.isEmpty, "CPU 1 ran calls with interrupts off: \(trace.runs)")
        _ = machine.run(on: 1) { FakePlatform.enableInterrupts() }
        #expect(trace.waitForRuns(12))
        #expect(trace.ids == Array(0..<12))
        #expect(trace.runs.allSatisfy { $0.cpu == 1 && !$0.interruptsOn }, "\(trace.runs)")
        #expect(HostClock.poll(timeout: 5) { records.allUnlocked })
      }
    }

    @Test func oneInterruptPerBurst() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let records = RecordPool(tickets: (0..<9).map { CallTicket(trace, id: $0) }, function: Calls.trace)
        let requested = machine.interruptsRequested(for: 1)
        let handled = machine.interruptsHandled(on: 1)
        let delivered = machine.cpus[1].ipisDelivered.load(ordering: .relaxed)
        _ = machine.run(on: 1) { FakePlatform.disableInterrupts() }
        Self.pushInTurn(machine, records)
        #expect(machine.interruptsRequested(for: 1) - requested == 1, "only the first push interrupts")
        #expect(machine.cpus[1].ipisDelivered.load(ordering: .relaxed) - delivered == 1)
        _ = machine.run(on: 1) { FakePlatform.enableInterrupts() }
        #expect(trace.waitForRuns(9))
        #expect(machine.interruptsHandled(on: 1) - handled == 1, "one handler run took the burst")
        #expect(trace.ids == Array(0..<9))
        // The queue is empty again: the next push must interrupt afresh.
        #expect(HostClock.poll(timeout: 5) { records.allUnlocked })
        #expect(
          machine.attempt(on: 0) { try machine.calls.callSingleAsync(on: CPUIndex(1), records[0]) }
            == .returned)
        #expect(machine.interruptsRequested(for: 1) - requested == 2)
        #expect(trace.waitForRuns(10))
      }
    }

    @Test func asyncRecordIsBusyWhileInFlight() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let records = RecordPool(tickets: [CallTicket(trace, id: 7)], function: Calls.trace)
        let record = records[0]
        _ = machine.run(on: 1) { FakePlatform.disableInterrupts() }
        #expect(
          machine.attempt(on: 0) { try machine.calls.callSingleAsync(on: CPUIndex(1), record) } == .returned)
        let lockedWhileQueued = record.pointee.isLocked
        #expect(lockedWhileQueued, "a queued record is locked")
        #expect(
          machine.attempt(on: 0) { try machine.calls.callSingleAsync(on: CPUIndex(1), record) }
            == .threw(.recordBusy))
        #expect(
          machine.attempt(on: 2) { try machine.calls.callSingleAsync(on: CPUIndex(3), record) }
            == .threw(.recordBusy))
        #expect(
          machine.attempt(on: 2) { try machine.calls.callSingleAsync(on: CPUIndex(2), record) }
            == .threw(.recordBusy))
        #expect(trace.runs.isEmpty)
        _ = machine.run(on: 1) { FakePlatform.enableInterrupts() }
        #expect(HostClock.poll(timeout: 5) { !record.pointee.isLocked }, "unlocked once run")
        #expect(trace.runs == [CallRun(id: 7, cpu: 1, interruptsOn: false)], "ran exactly once")
        // Free again: it can be reused, here towards another CPU.
        #expect(
          machine.attempt(on: 0) { try machine.calls.callSingleAsync(on: CPUIndex(3), record) } == .returned)
        #expect(trace.waitForRuns(2))
        #expect(HostClock.poll(timeout: 5) { !record.pointee.isLocked })
        #expect(trace.runs.last == CallRun(id: 7, cpu: 3, interruptsOn: false))
      }
    }

    @Test(arguments: [1, 2, 3])
    func waitingCallReturnsAfterTheFunction(target: Int) {
      FakeMachine.with { machine in
        let ticket = CallTicket(CallTrace(), id: target)
        // The function spins 20 ms before its plain store; the caller reads it at once.
        let payload = machine.run(on: 0) {
          let outcome = caughtError {
            try machine.calls.callSingle(
              on: CPUIndex(target), Calls.slowlyWritePayload, ticket.info, wait: true)
          }
          return outcome == nil ? ticket.payload : -1
        }
        #expect(payload == 42, "callSingle(wait: true) returned before the function finished")
        #expect(ticket.trace.runs.map(\.cpu) == [target])
      }
    }

    @Test func waitingCallManyReturnsAfterEveryFunction() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 0)
        let seen = machine.run(on: 0) {
          machine.calls.callMany(CPUSet.first(4), Calls.trace, ticket.info, wait: true)
          return trace.runs.count
        }
        #expect(seen == 3, "callMany(wait: true) returned before all 3 targets ran")
      }
    }
  }
}
