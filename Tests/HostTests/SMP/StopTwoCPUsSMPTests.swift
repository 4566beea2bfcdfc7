import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// `stopTwoCPUs` racing `stopCPUs` and `stopMachine` on fake CPUs: the
  /// `queueingInProgress` back-off (Linux's -EDEADLK retry in
  /// cpu_stop_queue_two_works()) keeps a pair from being queued between the works of a
  /// whole-machine call, where the two calls' works would sit in opposite orders on two
  /// CPUs and each wait for the other forever.
  @Suite("Stop two CPUs on fake CPUs")
  struct StopTwoCPUsSMPTests {
    /// The shared state of one race.
    final class Race: @unchecked Sendable {
      /// Set by the whole-machine caller when it is done; the pairers then stop.
      let over = Atomic<Bool>(false)
      /// Successful `stopTwoCPUs` calls, and whole-machine calls made.
      let pairCalls = Atomic<Int>(0)
      let wholeCalls = Atomic<Int>(0)
      /// Calls that threw.
      let failures = EventLog()
      /// What the pairs' function, `stopMachine`'s and `stopCPUs`'s recorded.
      let pairs: StopProbe
      let wholeMachine: StopProbe
      let allStarted: StopProbe

      /// A race on `cpuCount` CPUs.
      init(cpuCount: Int) {
        pairs = StopProbe(cpuCount: cpuCount)
        wholeMachine = StopProbe(cpuCount: cpuCount)
        allStarted = StopProbe(cpuCount: cpuCount)
      }

      /// Where the race stood, for a failure message.
      func progress(_ stoppers: Stoppers<FakeSchedPlatform>) -> String {
        "(pairs \(pairCalls.load(ordering: .relaxed)), whole-machine calls \(wholeCalls.load(ordering: .relaxed)),"
          + " retries \(stoppers.statistics.deadlockRetries.load(ordering: .relaxed)))"
      }
    }

    /// Where the threads of a race sit. Stops and pairs take CPUs 0..<`stopped`.
    struct Layout: Sendable {
      /// CPUs the stops and pairs take part in.
      let stopped: Int
      /// CPUs of the machine.
      let cpuCount: Int
      /// One pairer thread on each of these.
      let pairerCPUs: [Int]
      /// The whole-machine caller's CPU.
      let wholeCPU: Int
      /// Whether every other whole-machine call is `stopMachine` (which stops every
      /// online CPU, the callers' too) rather than `stopCPUs`.
      let usesStopMachine: Bool

      /// Each caller alone on a CPU that no stop touches: the race in its plainest form
      /// (no caller is ever preempted while it prepares to sleep).
      static let callersApart = Layout(
        stopped: 4, cpuCount: 9, pairerCPUs: [4, 5, 6, 7], wholeCPU: 8, usesStopMachine: false)
      /// A pairer on every CPU, the whole-machine caller sharing CPU 0, `stopMachine`
      /// too: as in the kernel, where `stopTwoCPUs` stops the caller's own CPU.
      static let callersOnStoppedCPUs = Layout(
        stopped: 4, cpuCount: 4, pairerCPUs: [0, 1, 2, 3], wholeCPU: 0, usesStopMachine: true)
    }

    /// Pairer threads call `stopTwoCPUs` on random pairs (either order) without a
    /// pause, while another thread calls `stopCPUs` with a function that waits for every
    /// CPU of the call to start it: a pair queued between that call's works, in the
    /// opposite order on two CPUs, deadlocks both. Runs until 10 back-offs and 100
    /// whole-machine calls, or 5 s. Nothing hangs; every call succeeded and ran its
    /// function where it should, as often as it should; the back-off happened.
    @Test func pairsRacingStopCPUsBackOffAndNeverDeadlock() {
      race(.callersApart)
    }

    /// The same race with the callers on the CPUs the stops take, and `stopMachine`
    /// (every other whole-machine call). Before Scheduler.wake stopped queueing a
    /// preempted sleeper twice, it lost a runnable pairer in about a third of the runs
    /// (SchedulerSMPTests.aThreadWokenWhilePreemptedBeforeSleepingIsQueuedOnce).
    @Test func pairsOnTheStoppedCPUsRacingStopMachine() {
      race(.callersOnStoppedCPUs)
    }

    /// Runs the race with threads placed as `layout` says, and checks it.
    func race(_ layout: Layout, sourceLocation: SourceLocation = #_sourceLocation) {
      let budget = 5.0
      FakeSchedMachine.with(
        cpus: layout.cpuCount, stoppers: true, ipiNanoseconds: 20_000, sourceLocation: sourceLocation
      ) {
        machine in
        let stoppers = machine.stoppers
        let race = Race(cpuCount: layout.cpuCount)
        let pairers = layout.pairerCPUs.map { cpu in
          machine.run("pairer", cpu, on: cpu) { Self.pair(stoppers, race, cpuCount: layout.stopped) }
        }
        let whole = machine.run("whole", on: layout.wholeCPU) {
          Self.stopWholeUntilDone(stoppers, race, layout, deadline: HostClock.deadline(after: budget))
        }
        machine.waitForAll(
          [whole] + pairers, timeout: budget + 10, race.progress(stoppers), sourceLocation: sourceLocation)
        Self.check(race, layout, machine, sourceLocation: sourceLocation)
      }
    }

    /// What must hold once a race in `layout` is over.
    static func check(
      _ race: Race, _ layout: Layout, _ machine: FakeSchedMachine, sourceLocation: SourceLocation
    ) {
      let stoppers = machine.stoppers
      let calls = race.wholeCalls.load(ordering: .relaxed)
      let machineCalls = layout.usesStopMachine ? (calls + 1) / 2 : 0
      let onStopped = { (count: Int) in (0..<layout.cpuCount).map { $0 < layout.stopped ? count : 0 } }
      let pairCalls = race.pairCalls.load(ordering: .relaxed)
      #expect(race.failures.all.isEmpty, "\(race.failures.all.prefix(4))", sourceLocation: sourceLocation)
      #expect(race.pairs.runs.total == pairCalls, "\(race.pairs.summary)", sourceLocation: sourceLocation)
      #expect(race.wholeMachine.runs.values == onStopped(machineCalls), sourceLocation: sourceLocation)
      #expect(race.allStarted.runs.values == onStopped(calls - machineCalls), sourceLocation: sourceLocation)
      #expect(
        race.allStarted.arrivalTimeouts.load(ordering: .relaxed) == 0,
        "stopCPUs functions gave up after 10 s waiting for CPUs held by a pair: deadlock",
        sourceLocation: sourceLocation)
      #expect(
        stoppers.statistics.stalls.load(ordering: .relaxed) == 0, "\(machine.log.suffix(4))",
        sourceLocation: sourceLocation)
      let retries = stoppers.statistics.deadlockRetries.load(ordering: .relaxed)
      #expect(
        retries > 0, "no stopTwoCPUs ever backed off \(race.progress(stoppers))",
        sourceLocation: sourceLocation)
    }

    /// The whole-machine caller: calls until `deadline`, or until it made 100 calls and
    /// saw 10 back-offs; then ends the race.
    static func stopWholeUntilDone(
      _ stoppers: Stoppers<FakeSchedPlatform>, _ race: Race, _ layout: Layout, deadline: UInt64
    ) {
      var call = 0
      while HostClock.now() < deadline
        && (call < 100 || stoppers.statistics.deadlockRetries.load(ordering: .relaxed) < 10)
      {
        stopWhole(stoppers, race, stopped: layout.stopped, layout.usesStopMachine && call % 2 == 0)
        jitter()
        call += 1
        race.wholeCalls.store(call, ordering: .relaxed)
      }
      race.over.store(true, ordering: .relaxed)
    }

    /// A pairer: `stopTwoCPUs` on random pairs of distinct CPUs of 0..<`cpuCount` until
    /// the race is over.
    static func pair(_ stoppers: Stoppers<FakeSchedPlatform>, _ race: Race, cpuCount: Int) {
      var random = SystemRandomNumberGenerator()
      while !race.over.load(ordering: .relaxed) {
        let first = Int.random(in: 0..<cpuCount, using: &random)
        let other = Int.random(in: 0..<cpuCount - 1, using: &random)
        let second = other < first ? other : other + 1
        do throws(StopError) {
          try stoppers.stopTwoCPUs(
            CPUIndex(first), CPUIndex(second), StopFunctions.count, race.pairs.argument)
          race.pairCalls.wrappingAdd(1, ordering: .relaxed)
          jitter()
        } catch {
          race.failures.record("stopTwoCPUs(\(first), \(second)): \(error)")
        }
      }
    }

    /// A random pause of 0 to 3 spin steps (each a yield of the host core): the callers'
    /// rhythms must not fall into step, where the pairs always come just after the
    /// whole-machine queueing and the race never happens.
    static func jitter() {
      var random = SystemRandomNumberGenerator()
      for _ in 0..<Int.random(in: 0..<4, using: &random) { FakeSchedPlatform.relax() }
    }

    /// One whole-machine call on CPUs 0..<`stopped`: `stopMachine` (which stops every
    /// online CPU, running the function on those) or `stopCPUs` with a function that
    /// waits until every CPU of the call started it.
    static func stopWhole(
      _ stoppers: Stoppers<FakeSchedPlatform>, _ race: Race, stopped: Int, _ usesStopMachine: Bool
    ) {
      let (cpus, allStarted) = (CPUSet.first(stopped), race.allStarted)
      do throws(StopError) {
        if usesStopMachine {
          try stoppers.stopMachine(StopFunctions.count, race.wholeMachine.argument, cpus: cpus)
        } else {
          // One caller: the target grows by a call's CPUs each time. Relaxed: published
          // to the stoppers by the queueing's locks.
          let target = allStarted.arrivals.load(ordering: .relaxed) + stopped
          allStarted.arrivalTarget.store(target, ordering: .relaxed)
          try stoppers.stopCPUs(cpus, StopFunctions.waitForEveryone, allStarted.argument)
        }
      } catch {
        race.failures.record("whole-machine call: \(error)")
      }
    }
  }
}
