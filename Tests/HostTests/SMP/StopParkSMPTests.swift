import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// Parking a stopper (CPU hotplug) against works queued on it: the guarantee of
  /// Linux's "stop_machine: Ensure that a queued callback will be called before
  /// cpu_stop_park()": a work the queueing accepted runs, a work offered after `park`
  /// is answered at once as not run, and the thread parks only with its queue empty.
  @Suite("Stopper parking on fake CPUs")
  struct StopParkSMPTests {
    /// What the parking test saw, step by step, from the kernel threads.
    final class Steps: @unchecked Sendable {
      /// The driver's steps.
      let log = EventLog()
      /// The outcome of the waiter's `stopOneCPU`.
      let waiter = EventLog()
    }

    /// On CPU 1 a stop function holds the stopper; behind it wait three
    /// `stopOneCPUNoWait` works and a `stopOneCPU` from CPU 2. The function then parks
    /// its own stopper (as the stop taking a CPU down does). Now the stopper is
    /// disabled but not parked, with four works queued; new offers are refused at once:
    /// `stopOneCPUNoWait` false (buffer free), `stopOneCPU` and `stopTwoCPUs`
    /// `.notFound`, and `stopCPUs` on CPUs 1 and 2 returns after running on 2 only (the
    /// refusal signalled its done record). Once released, the four queued works run,
    /// then the stopper parks: when `isParked` turns true all four had run and nothing
    /// is queued. After `unpark`, `stopOneCPU` runs on CPU 1 again.
    @Test func worksQueuedBeforeParkRunAndLaterOnesAreRefused() {
      FakeSchedMachine.with(cpus: 3, stoppers: true) { machine in
        let stoppers = machine.stoppers
        let blocker = StopProbe(cpuCount: 3, stoppers: stoppers)
        let queued = StopProbe(cpuCount: 3)
        let late = StopProbe(cpuCount: 3)
        let steps = Steps()
        let works = UnsafeMutablePointer<StopWork<FakeSchedPlatform>>.allocate(capacity: 4)
        for index in 0..<4 { (works + index).initialize(to: StopWork()) }
        defer {
          works.deinitialize(count: 4)
          works.deallocate()
        }
        let waiter = machine.spawn("waiter", on: 2) {
          Self.record(steps.waiter, "waiter") { () throws(StopError) in
            try stoppers.stopOneCPU(CPUIndex(1), StopFunctions.count, queued.argument)
          }
        }
        let driver = machine.run("driver", on: 0) {
          Self.drive(
            stoppers, blocker: blocker, queued: queued, late: late, works: works, waiter: waiter, steps)
        }
        machine.waitForAll(
          [driver, waiter], timeout: 20, "(parking CPU 1's stopper; \(steps.log.all.suffix(3)))")
        #expect(
          steps.log.all == [
            "queued before park: 4", "after park: parked false, enabled false, queued 4",
            "late noWait: refused, free", "late stopOneCPU: notFound", "late stopTwoCPUs: notFound",
            "late stopCPUs: ok", "refused 5", "parked: true", "at park: ran 4, queued 0, buffers free",
            "after unpark: ok",
          ])
        #expect(steps.waiter.all == ["waiter: ok"])
        #expect(blocker.runs.values == [0, 1, 0])
        #expect(queued.runs.values == [0, 5, 0], "\(queued.summary)")
        #expect(late.runs.values == [0, 0, 1], "\(late.summary)")
      }
    }

    /// Runs `call` and records `label: ok` or `label: error`.
    static func record(_ log: EventLog, _ label: String, _ call: () throws(StopError) -> Void) {
      do throws(StopError) {
        try call()
        log.record("\(label): ok")
      } catch {
        log.record("\(label): \(error)")
      }
    }

    /// The driver of `worksQueuedBeforeParkRunAndLaterOnesAreRefused`, on CPU 0.
    static func drive(
      _ stoppers: Stoppers<FakeSchedPlatform>, blocker: StopProbe, queued: StopProbe, late: StopProbe,
      works: UnsafeMutablePointer<StopWork<FakeSchedPlatform>>, waiter: FakeKernelThread, _ steps: Steps
    ) {
      let cpu1 = CPUIndex(1)
      let machine = FakeSchedCPU.current.machine
      _ = stoppers.stopOneCPUNoWait(cpu1, StopFunctions.blockParkingOwnCPU, blocker.argument, work: works)
      // Acquire pairs with the release in the function: it holds CPU 1's stopper.
      guard FakeSchedPlatform.spin(until: { blocker.entered.load(ordering: .acquiring) == 1 }) else {
        return steps.log.record("the blocker never ran")
      }
      for index in 1..<4 {
        _ = stoppers.stopOneCPUNoWait(cpu1, StopFunctions.count, queued.argument, work: works + index)
      }
      machine.start(waiter)
      let waiterQueued = FakeSchedPlatform.spin { stoppers.queuedWorks(on: cpu1) == 4 }
      steps.log.record("queued before park: \(waiterQueued ? 4 : stoppers.queuedWorks(on: cpu1))")
      blocker.parkNow.store(true, ordering: .releasing)  // Pairs with the function's acquire.
      guard FakeSchedPlatform.spin(until: { blocker.parkCalled.load(ordering: .acquiring) }) else {
        return steps.log.record("the blocker never parked its stopper")
      }
      steps.log.record(
        "after park: parked \(stoppers.isParked(cpu1)), enabled \(stoppers.isEnabled(cpu1)),"
          + " queued \(stoppers.queuedWorks(on: cpu1))")
      offerLate(stoppers, late: late, steps)
      blocker.release()
      // Acquire (inside isParked) pairs with the stopper's release once drained.
      let parked = FakeSchedPlatform.spin { stoppers.isParked(cpu1) }
      let ran = queued.runs.values[1]
      let free = (0..<4).allSatisfy { !(works + $0).pointee.isBusy }
      steps.log.record("parked: \(parked)")
      steps.log.record(
        "at park: ran \(ran), queued \(stoppers.queuedWorks(on: cpu1)), buffers \(free ? "free" : "busy")")
      guard FakeSchedPlatform.spin(until: { waiter.isFinished }) else {
        return steps.log.record("waiter hung")
      }
      stoppers.unpark(cpu1)
      record(steps.log, "after unpark") { () throws(StopError) in
        try stoppers.stopOneCPU(cpu1, StopFunctions.count, queued.argument)
      }
    }

    /// Offers CPU 1's disabled stopper one work of each kind; each must be refused at
    /// once (counted in `refusedWorks`).
    static func offerLate(_ stoppers: Stoppers<FakeSchedPlatform>, late: StopProbe, _ steps: Steps) {
      let cpu1 = CPUIndex(1)
      let refusedBefore = stoppers.statistics.refusedWorks.load(ordering: .relaxed)
      var work = StopWork<FakeSchedPlatform>()
      let queued = withUnsafeMutablePointer(to: &work) { work in
        stoppers.stopOneCPUNoWait(cpu1, StopFunctions.count, late.argument, work: work) || work.pointee.isBusy
      }
      steps.log.record("late noWait: \(queued ? "queued or busy" : "refused, free")")
      record(steps.log, "late stopOneCPU") { () throws(StopError) in
        try stoppers.stopOneCPU(cpu1, StopFunctions.count, late.argument)
      }
      record(steps.log, "late stopTwoCPUs") { () throws(StopError) in
        try stoppers.stopTwoCPUs(CPUIndex(2), cpu1, StopFunctions.count, late.argument)
      }
      record(steps.log, "late stopCPUs") { () throws(StopError) in
        try stoppers.stopCPUs(CPUSet([cpu1, CPUIndex(2)]), StopFunctions.count, late.argument)
      }
      // stopTwoCPUs refuses under both locks and queues nothing, so it signals nothing.
      steps.log.record("refused \(stoppers.statistics.refusedWorks.load(ordering: .relaxed) - refusedBefore)")
    }
  }
}
