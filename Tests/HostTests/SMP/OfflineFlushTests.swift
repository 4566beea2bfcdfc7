import LockstepKernel
import Testing

extension SMPTests {
  /// Calls left on a CPU going offline: the flush before offline, and the warning when
  /// an offline CPU takes a call interrupt.
  @Suite("Offline CPUs")
  struct OfflineFlushTests {
    /// Queues `records` on CPU 1 (interrupts off, so they stay queued), then takes CPU 1
    /// out of the online mask.
    static func strand(_ records: RecordPool, on machine: FakeMachine) {
      _ = machine.run(on: 1) { FakePlatform.disableInterrupts() }
      for index in 0..<records.count {
        let outcome = machine.attempt(on: 0) {
          try machine.calls.callSingleAsync(on: CPUIndex(1), records[index])
        }
        #expect(outcome == .returned)
      }
      machine.setOnline(1, false)
    }

    @Test func flushBeforeOfflineRunsQueuedCallsQuietly() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let records = RecordPool(tickets: (0..<3).map { CallTicket(trace, id: $0) }, function: Calls.trace)
        Self.strand(records, on: machine)
        let ranAtOnce = machine.run(on: 1) {
          machine.calls.flushQueueBeforeOffline()
          return trace.ids
        }
        #expect(ranAtOnce == [0, 1, 2], "flushed in arrival order before returning")
        #expect(trace.runs.allSatisfy { $0.cpu == 1 && !$0.interruptsOn })
        #expect(records.allUnlocked)
        // The IPI sent for the first push is still pending: taking it finds nothing.
        _ = machine.run(on: 1) { FakePlatform.enableInterrupts() }
        #expect(machine.cpus[1].interruptsTaken.load(ordering: .relaxed) == 1)
        #expect(trace.runs.count == 3)
        #expect(machine.logLines(containing: "offline").isEmpty, "\(machine.log)")
        #expect(machine.logLines(containing: "interrupts on").isEmpty, "\(machine.log)")
      }
    }

    @Test func interruptOnAnOfflineCPUWarnsOnce() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let records = RecordPool(tickets: (0..<2).map { CallTicket(trace, id: $0) }, function: Calls.trace)
        Self.strand(records, on: machine)
        _ = machine.run(on: 1) { FakePlatform.enableInterrupts() }
        #expect(trace.ids == [0, 1], "the calls still run, as in Linux")
        #expect(machine.logLines(containing: "call interrupt on offline CPU 1").count == 1, "\(machine.log)")
        #expect(machine.logLines(containing: "sent to offline CPU 1").count == 2, "one line per call")
        // Again: no second warning.
        machine.setOnline(1, true)
        Self.strand(records, on: machine)
        _ = machine.run(on: 1) { FakePlatform.enableInterrupts() }
        #expect(trace.ids == [0, 1, 0, 1])
        #expect(machine.logLines(containing: "call interrupt on offline CPU 1").count == 1, "\(machine.log)")
        #expect(records.allUnlocked)
      }
    }

    @Test func interruptWithAnEmptyQueueOnAnOfflineCPUIsQuiet() {
      FakeMachine.with { machine in
        machine.setOnline(2, false)
        machine.raiseInterrupt(on: 2)
        #expect(HostClock.poll(timeout: 5) { machine.cpus[2].interruptsTaken.load(ordering: .relaxed) == 1 })
        #expect(machine.logLines(containing: "offline").isEmpty, "\(machine.log)")
      }
    }
  }
}
