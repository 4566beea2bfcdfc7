import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// `stopMachine` on fake CPUs with a stopper thread each: the state machine
  /// NONE→PREPARE→DISABLE_IRQ→RUN→EXIT and its ack counter, checked through the per-CPU
  /// `StopTrace`s and a probe function, many times over.
  @Suite("Stop machine on fake CPUs")
  struct StopMachineSMPTests {
    /// The CPUs a round's stop runs its function on: none named (the first online CPU),
    /// all, or a subset that changes from round to round.
    static func selection(round: Int, cpuCount: Int) -> CPUSet? {
      switch round % 3 {
      case 0: return nil
      case 1: return CPUSet.first(cpuCount)
      default:
        let mask = (round / 3) % ((1 << cpuCount) - 1) + 1
        return CPUSet((0..<cpuCount).filter { mask & (1 << $0) != 0 }.map { CPUIndex($0) })
      }
    }

    /// Stop after stop from one caller (the last CPU's thread, so the stopper of its
    /// own CPU preempts it each time), 2, 3 and 4 CPUs, 300 rounds: after each, the
    /// function ran exactly once on each CPU it was meant for and nowhere else, with
    /// interrupts and preemption off; every CPU's trace belongs to this stop, saw all
    /// four states in order with interrupts off in RUN, and no CPU entered a state
    /// before every CPU had entered the one before (so no EXIT before the last RUN).
    @Test(arguments: [2, 3, 4])
    func everyCPUGoesThroughEveryStateInStep(cpuCount: Int) {
      let rounds = 300
      FakeSchedMachine.with(cpus: cpuCount, stoppers: true) { machine in
        let stoppers = machine.stoppers
        let probe = StopProbe(cpuCount: cpuCount)
        let problems = EventLog()
        let done = Atomic<Int>(0)
        let caller = machine.run("caller", on: cpuCount - 1) {
          var expected = [Int](repeating: 0, count: cpuCount)
          for round in 0..<rounds {
            let cpus = Self.selection(round: round, cpuCount: cpuCount)
            let isActive = { (cpu: Int) in cpus?.contains(CPUIndex(cpu)) ?? (cpu == 0) }
            do throws(StopError) {
              try stoppers.stopMachine(StopFunctions.count, probe.argument, cpus: cpus)
            } catch {
              problems.record("round \(round): \(error)")
            }
            for cpu in 0..<cpuCount where isActive(cpu) { expected[cpu] += 1 }
            let runs = probe.runs.values
            if runs != expected { problems.record("round \(round): runs \(runs), expected \(expected)") }
            let traces = (0..<cpuCount).map { stoppers.trace(of: CPUIndex($0)) }
            for problem in StopTimeline.problems(
              in: traces, generation: stoppers.lastStopGeneration, isActive)
            {
              problems.record("round \(round): \(problem)")
            }
            done.store(round + 1, ordering: .relaxed)
          }
        }
        machine.waitForAll(
          [caller], timeout: 60, "(\(done.load(ordering: .relaxed)) of \(rounds) stops on \(cpuCount) CPUs)")
        #expect(problems.all.isEmpty, "\(problems.all.count) problems, first: \(problems.all.prefix(4))")
        #expect(probe.runsWithInterruptsOn.load(ordering: .relaxed) == 0, "\(probe.summary)")
        #expect(probe.runsPreemptible.load(ordering: .relaxed) == 0, "\(probe.summary)")
        #expect(stoppers.statistics.stalls.load(ordering: .relaxed) == 0, "\(machine.log.suffix(4))")
      }
    }

    /// A thread on every CPU calls `stopMachine` on all CPUs at once, 40 times each:
    /// the calls take turns (the stop mutex), none hangs, and the function ran exactly
    /// once per CPU per call.
    @Test func concurrentCallersTakeTurns() {
      let (cpuCount, calls) = (4, 40)
      FakeSchedMachine.with(cpus: cpuCount, stoppers: true) { machine in
        let stoppers = machine.stoppers
        let probe = StopProbe(cpuCount: cpuCount)
        let failures = EventLog()
        let callers = (0..<cpuCount).map { cpu in
          machine.run("caller", cpu, on: cpu) {
            for call in 0..<calls {
              do throws(StopError) {
                try stoppers.stopMachine(StopFunctions.count, probe.argument, cpus: CPUSet.first(cpuCount))
              } catch {
                failures.record("CPU \(cpu), call \(call): \(error)")
              }
            }
          }
        }
        machine.waitForAll(
          callers, timeout: 60, "(\(cpuCount) concurrent stopMachine callers; \(probe.summary))")
        #expect(failures.all.isEmpty, "\(failures.all.prefix(4))")
        #expect(probe.runs.values == [Int](repeating: cpuCount * calls, count: cpuCount), "\(probe.summary)")
        #expect(stoppers.lastStopGeneration == UInt64(cpuCount * calls))
      }
    }

    /// A function that returns non-zero on one CPU makes every API report
    /// `.failed(code)`, with the code: `stopMachine`, `stopCPUs`, `stopOneCPU` and
    /// `stopTwoCPUs`. The same function returning 0 elsewhere changes nothing.
    @Test func aNonZeroResultComesBackAsFailed() {
      FakeSchedMachine.with(cpus: 3, stoppers: true) { machine in
        let stoppers = machine.stoppers
        let probe = StopProbe(cpuCount: 3, failingCPU: 2, failure: 42)
        let results = EventLog()
        let caller = machine.run("caller", on: 0) {
          let function = StopFunctions.count
          let all = CPUSet.first(3)
          let calls: [(String, () throws(StopError) -> Void)] = [
            (
              "stopMachine",
              { () throws(StopError) in try stoppers.stopMachine(function, probe.argument, cpus: all) }
            ),
            ("stopCPUs", { () throws(StopError) in try stoppers.stopCPUs(all, function, probe.argument) }),
            (
              "stopOneCPU",
              { () throws(StopError) in try stoppers.stopOneCPU(CPUIndex(2), function, probe.argument) }
            ),
            (
              "stopTwoCPUs",
              { () throws(StopError) in
                try stoppers.stopTwoCPUs(CPUIndex(2), CPUIndex(1), function, probe.argument)
              }
            ),
            (
              "stopOneCPU elsewhere",
              { () throws(StopError) in try stoppers.stopOneCPU(CPUIndex(1), function, probe.argument) }
            ),
          ]
          for (name, call) in calls {
            do throws(StopError) {
              try call()
              results.record("\(name): ok")
            } catch {
              results.record("\(name): \(error)")
            }
          }
        }
        machine.waitForAll([caller], timeout: 10, "(stops with a failing function)")
        #expect(
          results.all == [
            "stopMachine: failed(42)", "stopCPUs: failed(42)", "stopOneCPU: failed(42)",
            "stopTwoCPUs: failed(42)",
            "stopOneCPU elsewhere: ok",
          ])
        #expect(probe.runs.values == [2, 3, 4], "\(probe.summary)")
      }
    }

    /// From CPU 3, marked inactive (a CPU on its way up), with interrupts off:
    /// `stopMachineFromInactiveCPU` stops the three active CPUs through their stoppers
    /// and takes part itself without sleeping. The function runs on CPUs 0 and 3 as
    /// asked, every CPU's trace shows the whole stop, and interrupts are back on after.
    @Test func fromAnInactiveCPU() {
      FakeSchedMachine.with(cpus: 4, stoppers: true) { machine in
        let stoppers = machine.stoppers
        let probe = StopProbe(cpuCount: 4)
        let problems = EventLog()
        machine.setActive(3, false)
        let caller = machine.run("coming-up", on: 3) {
          let active = CPUSet([CPUIndex(0), CPUIndex(3)])
          FakeSchedPlatform.disableInterrupts()
          do throws(StopError) {
            try stoppers.stopMachineFromInactiveCPU(StopFunctions.count, probe.argument, cpus: active)
          } catch {
            problems.record("\(error)")
          }
          if FakeSchedPlatform.interruptsEnabled { problems.record("interrupts turned on") }
          FakeSchedPlatform.enableInterrupts()
          let traces = (0..<4).map { stoppers.trace(of: CPUIndex($0)) }
          let generation = stoppers.lastStopGeneration
          for problem in StopTimeline.problems(
            in: traces, generation: generation, { active.contains(CPUIndex($0)) })
          {
            problems.record(problem)
          }
        }
        machine.waitForAll([caller], timeout: 10, "(stopMachineFromInactiveCPU from CPU 3; \(probe.summary))")
        #expect(problems.all.isEmpty, "\(problems.all)")
        #expect(probe.runs.values == [1, 0, 0, 1], "\(probe.summary)")
        #expect(probe.runsWithInterruptsOn.load(ordering: .relaxed) == 0)
      }
    }

    /// Before `start` (early boot) `stopMachine` runs the function right where it is
    /// called, interrupts off, and says so if more than one CPU is online; a stopper
    /// that was never started takes no work (`.notFound`).
    @Test func beforeTheStoppersRun() {
      FakeSchedMachine.with(cpus: 2) { machine in
        let stoppers = Stoppers<FakeSchedPlatform>(cpuCount: 2, scheduler: machine.scheduler)
        let probe = StopProbe(cpuCount: 2)
        let results = EventLog()
        let caller = machine.run("early", on: 1) {
          do throws(StopError) {
            try stoppers.stopMachine(StopFunctions.count, probe.argument)
            results.record("stopMachine: ok")
            try stoppers.stopOneCPU(CPUIndex(0), StopFunctions.count, probe.argument)
            results.record("stopOneCPU: ok")
          } catch {
            results.record("\(error)")
          }
        }
        machine.waitForAll([caller], timeout: 10, "(stops before the stoppers run)")
        #expect(results.all == ["stopMachine: ok", "notFound"])
        #expect(probe.runs.values == [0, 1], "\(probe.summary)")
        #expect(probe.runsWithInterruptsOn.load(ordering: .relaxed) == 0)
        #expect(machine.log == ["stop: stop_machine before the stoppers run, with 2 CPUs online"])
      }
    }
  }
}

/// Checks of the `StopTrace`s every CPU left from one multi-CPU stop.
enum StopTimeline {
  /// What is wrong with `traces` (one per CPU, by index) as the record of stop number
  /// `generation`, whose function was to run on the CPUs `isActive` names.
  static func problems(in traces: [StopTrace], generation: UInt64, _ isActive: (Int) -> Bool) -> [String] {
    var found: [String] = []
    let states: [StopState] = [.prepare, .disableInterrupts, .run, .exit]
    for (cpu, trace) in traces.enumerated() {
      if trace.generation != generation {
        found.append("CPU \(cpu): trace of stop #\(trace.generation), not #\(generation)")
      }
      if trace.statesSeen != 4 { found.append("CPU \(cpu): saw \(trace.statesSeen) states") }
      if !trace.interruptsOffInRun { found.append("CPU \(cpu): interrupts on in RUN") }
      if trace.wasActive != isActive(cpu) { found.append("CPU \(cpu): wasActive \(trace.wasActive)") }
      let times = [trace.called] + states.map { trace.entered($0) } + [trace.left]
      if times != times.sorted() { found.append("CPU \(cpu): out of order \(times)") }
    }
    // A state begins only once every CPU acknowledged the one before.
    for (state, next) in zip(states, states.dropFirst()) {
      let lastIn = traces.map { $0.entered(state) }.max() ?? 0
      let firstInNext = traces.map { $0.entered(next) }.min() ?? 0
      if firstInNext < lastIn {
        found.append(
          "a CPU entered \(next.name) \(lastIn - firstInNext) ns before the last entered \(state.name)")
      }
    }
    return found
  }
}
