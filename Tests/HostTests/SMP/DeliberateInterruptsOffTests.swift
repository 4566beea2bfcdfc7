import LockstepKernel
import Testing

extension SMPTests {
  /// `withInterruptsDisabledDeliberately`: calls made inside it with interrupts off do
  /// not warn, so the once-per-boot warning still fires for real misuse afterwards.
  @Suite("Deliberate interrupts-off calls")
  struct DeliberateInterruptsOffTests {
    static let warning = "makes a cross-CPU call with interrupts disabled"

    @Test func deliberateCallsLeaveTheWarningForRealMisuse() {
      FakeMachine.with { machine in
        let ticket = CallTicket(CallTrace(), id: 0)
        let inside = machine.run(on: 1) {
          machine.calls.withInterruptsDisabledDeliberately {
            for _ in 0..<3 {
              try? machine.calls.callSingle(on: CPUIndex(2), Calls.trace, ticket.info, wait: true)
            }
            machine.calls.callMany(CPUSet([CPUIndex(2), CPUIndex(3)]), Calls.trace, ticket.info, wait: true)
            return FakePlatform.interruptsEnabled
          }
        }
        #expect(inside == false, "interrupts off inside the scope")
        #expect(machine.run(on: 1) { FakePlatform.interruptsEnabled } == true, "restored after it")
        #expect(machine.logLines(containing: Self.warning).isEmpty, "\(machine.log)")
        _ = machine.run(on: 3) {
          FakePlatform.disableInterrupts()
          for _ in 0..<2 {
            try? machine.calls.callSingle(on: CPUIndex(0), Calls.trace, ticket.info, wait: true)
          }
          FakePlatform.enableInterrupts()
        }
        #expect(ticket.trace.runs.map(\.cpu).sorted() == [0, 0, 2, 2, 2, 2, 3])
        #expect(machine.logLines(containing: Self.warning).count == 1, "\(machine.log)")
        #expect(machine.logLines(containing: "CPU 3 " + Self.warning).count == 1)
      }
    }

    @Test func scopeNestsAndIsPerCPU() {
      FakeMachine.with { machine in
        let ticket = CallTicket(CallTrace(), id: 0)
        // CPU 1 sits in a deliberate scope while CPU 2 misuses: only CPU 2 is excused
        // by nothing, so it warns.
        let inner = machine.run(on: 1) {
          machine.calls.withInterruptsDisabledDeliberately {
            machine.calls.withInterruptsDisabledDeliberately {
              try? machine.calls.callSingle(on: CPUIndex(3), Calls.trace, ticket.info, wait: true)
            }
            // Still inside the outer scope after the inner one ends.
            try? machine.calls.callSingle(on: CPUIndex(3), Calls.trace, ticket.info, wait: true)
            return machine.logLines(containing: Self.warning).count
          }
        }
        #expect(inner == 0, "\(machine.log)")
        _ = machine.run(on: 2) {
          FakePlatform.disableInterrupts()
          try? machine.calls.callSingle(on: CPUIndex(3), Calls.trace, ticket.info, wait: true)
          FakePlatform.enableInterrupts()
        }
        #expect(machine.logLines(containing: "CPU 2 " + Self.warning).count == 1, "\(machine.log)")
      }
    }
  }
}
