import LockstepKernel
import Testing

extension SMPTests {
  /// Which CPUs each API runs the function on, and how it interrupts them.
  @Suite("Target selection")
  struct CallSelectionTests {
    /// The set of the given CPU numbers.
    static func set(_ cpus: Int...) -> CPUSet { CPUSet(cpus.map(CPUIndex.init)) }

    @Test func callAnyPrefersTheRunningCPU() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 0)
        #expect(
          machine.attempt(on: 1) {
            try machine.calls.callAny(of: Self.set(0, 1, 3), Calls.trace, ticket.info, wait: true)
          } == .returned)
        #expect(trace.runs == [CallRun(id: 0, cpu: 1, interruptsOn: false)])
        #expect(machine.unicastIPIs() == 0)
      }
    }

    @Test func callAnyOtherwiseTakesTheFirstOnlineCPU() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 0)
        #expect(
          machine.attempt(on: 0) {
            try machine.calls.callAny(of: Self.set(1, 3), Calls.trace, ticket.info, wait: true)
          } == .returned)
        machine.setOnline(1, false)
        #expect(
          machine.attempt(on: 0) {
            try machine.calls.callAny(of: Self.set(1, 2, 3), Calls.trace, ticket.info, wait: true)
          } == .returned)
        #expect(trace.runs.map(\.cpu) == [1, 2])
      }
    }

    @Test func callManySkipsTheCallerAndOfflineCPUs() {
      FakeMachine.with(cpus: 5) { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 0)
        machine.setOnline(3, false)
        _ = machine.run(on: 0) {
          machine.calls.callMany(CPUSet.first(5), Calls.trace, ticket.info, wait: true)
        }
        #expect(trace.counts(cpuCount: 5) == [0, 1, 1, 0, 1])
        #expect(machine.broadcastSets == [Self.set(1, 2, 4)], "one IPI to the set of new queues")
        #expect(
          machine.unicastIPIs(to: [1, 2, 3, 4]) == 0,
          "the targets get only the broadcast (CPU 0 may get wake-ups)")
        #expect(!trace.anyRanWithInterruptsOn)
      }
    }

    @Test(arguments: [true, false])
    func callManyWithOneTargetTakesTheSingleCallPath(wait: Bool) {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 0)
        machine.setOnline(3, false)
        _ = machine.run(on: 0) {
          machine.calls.callMany(Self.set(0, 2, 3), Calls.trace, ticket.info, wait: wait)
        }
        #expect(trace.waitForRuns(1))
        #expect(trace.runs.map(\.cpu) == [2])
        #expect(machine.broadcastSets.isEmpty, "a single target goes through callSingle")
        #expect(machine.unicastIPIs(to: [2]) == 1)
      }
    }

    @Test func callManyWithNoTargetDoesNothing() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 0)
        machine.setOnline(2, false)
        _ = machine.run(on: 1) {
          machine.calls.callMany(Self.set(1, 2), Calls.trace, ticket.info, wait: true)
        }
        #expect(trace.runs.isEmpty, "neither the caller nor an offline CPU runs it")
        #expect(machine.unicastIPIs() == 0 && machine.broadcastSets.isEmpty)
      }
    }

    @Test func callOthersRunsOnEveryOtherOnlineCPU() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 0)
        _ = machine.run(on: 1) { machine.calls.callOthers(Calls.trace, ticket.info, wait: true) }
        #expect(trace.counts(cpuCount: 4) == [1, 0, 1, 1])
      }
    }

    @Test func onEachCPUIncludesTheCaller() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 0)
        let interruptsAfter = machine.run(on: 2) {
          machine.calls.onEachCPU(Calls.trace, ticket.info, wait: true)
          return FakePlatform.interruptsEnabled
        }
        #expect(trace.counts(cpuCount: 4) == [1, 1, 1, 1])
        #expect(!trace.anyRanWithInterruptsOn, "\(trace.runs)")
        #expect(interruptsAfter == true)
      }
    }

    @Test func onEachCPUInAMask() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 0)
        _ = machine.run(on: 0) {
          machine.calls.onEachCPU(in: Self.set(1, 3), Calls.trace, ticket.info, wait: true)
        }
        #expect(trace.counts(cpuCount: 4) == [0, 1, 0, 1], "caller outside the mask")
        _ = machine.run(on: 1) {
          machine.calls.onEachCPU(in: Self.set(1, 3), Calls.trace, ticket.info, wait: true)
        }
        #expect(trace.counts(cpuCount: 4) == [0, 2, 0, 2], "caller inside the mask")
      }
    }

    @Test func onEachCPUWhereHonoursTheCondition() {
      FakeMachine.with { machine in
        let trace = CallTrace()
        let ticket = CallTicket(trace, id: 0)
        machine.setOnline(2, false)
        let asked = machine.run(on: 1) {
          var asked: [Int] = []
          machine.calls.onEachCPU(
            where: { cpu, info in
              asked.append(cpu.rawValue)
              return info == ticket.info && cpu.rawValue % 2 == 0
            }, Calls.trace, ticket.info, wait: true)
          return asked
        }
        #expect(asked == [0, 1, 3], "asked about each online CPU, with the info")
        #expect(trace.counts(cpuCount: 4) == [1, 0, 0, 0])
      }
    }

    @Test func kickAllCPUsSyncReturnsAfterEveryOtherCPUTookAnInterrupt() {
      FakeMachine.with { machine in
        machine.setOnline(3, false)
        let before = (0..<4).map { machine.interruptsHandled(on: $0) }
        _ = machine.run(on: 0) { machine.calls.kickAllCPUsSync() }
        // Read at once: the kick must not return before the others' handlers ran.
        let after = (0..<4).map { machine.interruptsHandled(on: $0) }
        let taken = zip(after, before).map { $0 - $1 }
        #expect(taken[1] >= 1 && taken[2] >= 1, "handled: \(taken)")
        #expect(taken[3] == 0, "an offline CPU is not kicked: \(taken)")
      }
    }
  }
}
