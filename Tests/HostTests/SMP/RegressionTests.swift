import LockstepKernel
import Testing

/// The info of a call function that itself calls `callMany` from the CPU it runs on.
final class NestedCallMany: @unchecked Sendable {
  /// The machine whose `calls` the inner call uses.
  unowned let machine: FakeMachine
  /// The inner call's targets.
  let targets: CPUSet
  /// The inner call's ticket.
  let ticket: CallTicket

  /// An inner `callMany(targets, ...)` on `machine` reporting through `ticket`.
  init(machine: FakeMachine, targets: CPUSet, ticket: CallTicket) {
    self.machine = machine
    self.targets = targets
    self.ticket = ticket
  }

  /// Runs `callMany(targets, trace, ticket, wait: true)` on the running CPU.
  static var call: CallFunction {
    { info in
      let context = Unmanaged<NestedCallMany>.fromOpaque(info!).takeUnretainedValue()
      context.machine.calls.callMany(context.targets, Calls.trace, context.ticket.info, wait: true)
    }
  }
}

extension SMPTests {
  /// Defects these tests found in Kernel/SMP, kept as regression tests.
  @Suite("Regressions")
  struct RegressionTests {
    /// callSingle(wait: false) used to wait for the CPU's async record with the *new*
    /// target: the watchdog named the wrong CPU and re-sent the IPI to it, so a lost IPI
    /// to the previous target was never recovered (fixed in 08d8018: the record keeps
    /// its target).
    @Test func asyncRecordWaitWatchesThePreviousTarget() {
      FakeMachine.with(watchdogTimeout: 50_000_000) { machine in
        let trace = CallTrace()
        let tickets = (0..<2).map { CallTicket(trace, id: $0) }
        machine.dropNextIPIs(1, to: 1)
        let job = machine.start(on: 0) {
          try? machine.calls.callSingle(on: CPUIndex(1), Calls.trace, tickets[0].info, wait: false)
          try? machine.calls.callSingle(on: CPUIndex(2), Calls.trace, tickets[1].info, wait: false)
        }
        let recoveredAlone = job.wait(timeout: 0.6)
        if !recoveredAlone { machine.raiseInterrupt(on: 1) }  // unstick it by hand
        machine.finish(job)
        #expect(recoveredAlone, "lost IPI to CPU 1 not re-sent; log: \(machine.log)")
        #expect(trace.waitForRuns(2))
        let report = machine.logLines(containing: "csd: CPU 0 waiting").first ?? "(no report)"
        #expect(report.contains("for CPU 1 "), "\(report)")
        #expect(machine.logLines(containing: "completed late").count == 1, "\(machine.log)")
      }
    }

    /// callMany used to queue to all targets and send the IPIs only after the loop;
    /// while the loop waited for a busy record it served its own queue, and a served
    /// function calling callMany towards a CPU already queued (not yet interrupted)
    /// stalled for a full watchdog period, the watchdog blaming an idle CPU with
    /// interrupts on (fixed in 1eae7e1: callMany interrupts the CPUs queued so far
    /// before it waits).
    @Test func nestedCallManyDoesNotWaitForAnUninterruptedCPU() {
      FakeMachine.with(watchdogTimeout: 50_000_000) { machine in
        let trace = CallTrace()
        let outer = CallTicket(trace, id: 0)
        let inner = NestedCallMany(
          machine: machine, targets: CallSelectionTests.set(1, 3), ticket: CallTicket(trace, id: 1))
        let records = RecordPool(count: 1, function: NestedCallMany.call)
        records[0].pointee.info = Unmanaged.passUnretained(inner).toOpaque()
        _ = machine.run(on: 2) { FakePlatform.disableInterrupts() }
        // Leaves CPU 0's record for CPU 2 in flight: the next callMany must wait for it.
        _ = machine.run(on: 0) {
          machine.calls.callMany(CallSelectionTests.set(1, 2), Calls.trace, outer.info, wait: false)
        }
        let requested = machine.interruptsRequested(for: 1)
        let outerJob = machine.start(on: 0) {
          machine.calls.callMany(CPUSet.first(4), Calls.trace, outer.info, wait: true)
        }
        // The outer call has queued to CPU 1 (no IPI yet) and waits for CPU 2's record.
        #expect(HostClock.poll(timeout: 5) { machine.interruptsRequested(for: 1) > requested })
        #expect(
          machine.attempt(on: 3) { try machine.calls.callSingleAsync(on: CPUIndex(0), records[0]) }
            == .returned)
        #expect(trace.waitForRuns(4), "inner call done while CPU 2 is still busy: \(trace.runs)")
        _ = machine.run(on: 2) { FakePlatform.enableInterrupts() }
        machine.finish(outerJob)
        #expect(trace.waitForRuns(7))
        #expect(trace.counts(cpuCount: 4) == [0, 3, 2, 2], "\(trace.runs)")
        #expect(HostClock.poll(timeout: 5) { records.allUnlocked })
        #expect(machine.logLines(containing: "for CPU 1 ").isEmpty, "\(machine.log)")
      }
    }
  }
}
