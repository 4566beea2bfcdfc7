import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// The single-stopper calls on fake CPUs: `stopOneCPU`, `stopOneCPUNoWait` and its
  /// buffer, `tryStopCPUs` against a held stop mutex, and the report of a stop function
  /// that leaks a preemption count.
  @Suite("Stop one CPU on fake CPUs")
  struct StopOneCPUSMPTests {
    /// `stopOneCPU` from CPU 1 on CPU 1 (its stopper preempts the caller) and on CPU 2,
    /// 50 times each: the function runs there, in the stopper (preemption off), once
    /// per call. A CPU number out of range is `.invalidCPU`, and runs nothing.
    @Test func onItsOwnCPUAndOnAnother() {
      FakeSchedMachine.with(cpus: 3, stoppers: true) { machine in
        let stoppers = machine.stoppers
        let probe = StopProbe(cpuCount: 3)
        let results = EventLog()
        let caller = machine.run("caller", on: 1) {
          for target in [1, 2] {
            for _ in 0..<50 {
              do throws(StopError) {
                try stoppers.stopOneCPU(CPUIndex(target), StopFunctions.count, probe.argument)
              } catch {
                results.record("CPU \(target): \(error)")
              }
            }
          }
          for target in [CPUIndex(3), CPUIndex(99)] {
            do throws(StopError) {
              try stoppers.stopOneCPU(target, StopFunctions.count, probe.argument)
            } catch {
              results.record("CPU \(target.rawValue): \(error)")
            }
          }
        }
        machine.waitForAll([caller], timeout: 10, "(stopOneCPU on CPUs 1 and 2; \(probe.summary))")
        #expect(
          results.all == [
            "CPU 3: invalidCPU(LockstepKernel.CPUIndex(rawValue: 3))",
            "CPU 99: invalidCPU(LockstepKernel.CPUIndex(rawValue: 99))",
          ])
        #expect(probe.runs.values == [0, 50, 50], "\(probe.summary)")
        #expect(probe.runsPreemptible.load(ordering: .relaxed) == 0, "\(probe.summary)")
        #expect(stoppers.statistics.worksRun.load(ordering: .relaxed) == 100)
      }
    }

    /// `stopOneCPUNoWait` returns at once with its buffer busy while the function runs
    /// (it blocks until released), and the buffer turns free, with the function's
    /// effects visible, once it returned. A CPU out of range is refused.
    @Test func noWaitBufferIsBusyUntilTheFunctionReturned() {
      FakeSchedMachine.with(cpus: 2, stoppers: true) { machine in
        let stoppers = machine.stoppers
        let probe = StopProbe(cpuCount: 2)
        let results = EventLog()
        let work = UnsafeMutablePointer<StopWork<FakeSchedPlatform>>.allocate(capacity: 1)
        work.initialize(to: StopWork())
        defer {
          work.deinitialize(count: 1)
          work.deallocate()
        }
        let caller = machine.run("caller", on: 0) {
          results.record("free before: \(!work.pointee.isBusy)")
          results.record(
            "queued: \(stoppers.stopOneCPUNoWait(CPUIndex(1), StopFunctions.block, probe.argument, work: work))"
          )
          results.record("busy while queued: \(work.pointee.isBusy)")
          // Acquire pairs with the release in `block`.
          let entered = FakeSchedPlatform.spin { probe.entered.load(ordering: .acquiring) == 1 }
          results.record("entered: \(entered), busy while running: \(work.pointee.isBusy)")
          probe.release()
          let freed = FakeSchedPlatform.spin { !work.pointee.isBusy }
          results.record("freed: \(freed), ran on CPU 1: \(probe.runs.values == [0, 1])")
          let refused = !stoppers.stopOneCPUNoWait(
            CPUIndex(2), StopFunctions.count, probe.argument, work: work)
          results.record("out of range refused: \(refused), free: \(!work.pointee.isBusy)")
        }
        machine.waitForAll(
          [caller], timeout: 15, "(stopOneCPUNoWait with a blocking function; \(probe.summary))")
        #expect(
          results.all == [
            "free before: true", "queued: true", "busy while queued: true",
            "entered: true, busy while running: true",
            "freed: true, ran on CPU 1: true", "out of range refused: true, free: true",
          ])
      }
    }

    /// While `stopCPUs` holds the stop mutex (its function blocks on CPU 1),
    /// `tryStopCPUs` from another CPU answers `.again` at once and runs nothing; after
    /// `stopCPUs` returned, the same call succeeds.
    @Test func tryStopCPUsIsAgainWhileStopCPUsHoldsTheMutex() {
      FakeSchedMachine.with(cpus: 3, stoppers: true) { machine in
        let stoppers = machine.stoppers
        let blocker = StopProbe(cpuCount: 3)
        let probe = StopProbe(cpuCount: 3)
        let results = EventLog()
        let holder = machine.run("holder", on: 0) {
          do throws(StopError) {
            try stoppers.stopCPUs(CPUSet([CPUIndex(1)]), StopFunctions.block, blocker.argument)
            results.record("stopCPUs: ok")
          } catch {
            results.record("stopCPUs: \(error)")
          }
        }
        let trier = machine.run("trier", on: 2) {
          // Acquire pairs with the release in `block`: stopCPUs is inside, mutex held.
          guard FakeSchedPlatform.spin(until: { blocker.entered.load(ordering: .acquiring) == 1 }) else {
            results.record("the blocker never ran")
            return
          }
          Self.tryStop(stoppers, probe, results, "while held")
          blocker.release()
          guard FakeSchedPlatform.spin(until: { holder.isFinished }) else {
            results.record("stopCPUs never returned")
            return
          }
          Self.tryStop(stoppers, probe, results, "after")
        }
        machine.waitForAll([holder, trier], timeout: 15, "(tryStopCPUs against a blocked stopCPUs)")
        #expect(results.all == ["while held: again", "stopCPUs: ok", "after: ok"])
        #expect(probe.runs.values == [0, 1, 1], "\(probe.summary)")
      }
    }

    /// One `tryStopCPUs` on CPUs 1 and 2, its outcome recorded as `label: outcome`.
    static func tryStop(
      _ stoppers: Stoppers<FakeSchedPlatform>, _ probe: StopProbe, _ results: EventLog, _ label: String
    ) {
      do throws(StopError) {
        try stoppers.tryStopCPUs(CPUSet([CPUIndex(1), CPUIndex(2)]), StopFunctions.count, probe.argument)
        results.record("\(label): ok")
      } catch {
        results.record("\(label): \(error)")
      }
    }

    /// A stop function that returns with preemption disabled once more (or enabled once
    /// more) than it found it is reported with a log line and counted, and the count is
    /// put back: the next function on that stopper finds preemption off exactly once,
    /// and the stopper keeps working.
    @Test(arguments: [true, false])
    func aLeakedPreemptionCountIsReportedAndPutBack(raised: Bool) {
      FakeSchedMachine.with(cpus: 2, stoppers: true) { machine in
        let stoppers = machine.stoppers
        let probe = StopProbe(cpuCount: 2)
        let next = StopProbe(cpuCount: 2)
        let results = EventLog()
        let caller = machine.run("caller", on: 0) {
          let leaking = raised ? StopFunctions.leakPreemptDisable : StopFunctions.extraPreemptEnable
          do throws(StopError) {
            try stoppers.stopOneCPU(CPUIndex(1), leaking, probe.argument)
            try stoppers.stopOneCPU(CPUIndex(1), StopFunctions.count, next.argument)
          } catch {
            results.record("\(error)")
          }
        }
        machine.waitForAll([caller], timeout: 10, "(stop functions leaking a preemption count)")
        #expect(results.all.isEmpty)
        let direction = raised ? "raised" : "lowered"
        #expect(
          machine.log == [
            "stop: CPU 1: a stop function left the preemption count \(direction) by 1; put back"
          ])
        #expect(stoppers.statistics.leakedPreemption.load(ordering: .relaxed) == 1)
        #expect(
          next.lastPreemptCount.load(ordering: .relaxed) == 1, "the next stop function's preemption count")
        #expect(next.runs.values == [0, 1], "\(next.summary)")
      }
    }
  }
}
