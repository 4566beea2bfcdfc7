import Synchronization

/// `ktest=stop`: the stopper API on real CPUs, each call's normal and error paths, and
/// stop_machine's lockstep over 10^4 runs, checked from every CPU's timeline.
enum StopSuite {
  static let suite = KernelTestSuite(
    name: "stop",
    cases: [
      KernelTestCase(name: "stop_one_cpu_runs_there", run: stopOneCPURunsThere),
      KernelTestCase(name: "stop_one_cpu_errors", run: stopOneCPUErrors),
      KernelTestCase(name: "stop_one_cpu_nowait", run: stopOneCPUNoWait),
      KernelTestCase(name: "stop_two_cpus", run: stopTwoCPUs),
      KernelTestCase(name: "stop_cpus_and_try", run: StopSuiteCases.stopCPUsAndTry),
      KernelTestCase(name: "stop_machine_lockstep", run: stopMachineLockstep),
      KernelTestCase(name: "stop_machine_errors_and_subsets", run: StopSuiteCases.stopMachineSubsets),
      KernelTestCase(name: "stop_machine_from_inactive_cpu", run: StopSuiteCases.fromInactiveCPU),
      KernelTestCase(name: "stopper_preempts_a_spinner", run: StopSuiteCases.stopperPreemptsSpinner),
      KernelTestCase(name: "leaked_preemption_is_reported", run: StopSuiteCases.leakedPreemption),
      KernelTestCase(name: "stop_two_cpus_races_stop_cpus", run: StopRaceCase.pairsAgainstStopCPUs),
    ])

  static var stoppers: Stoppers<X86_64Platform> { StopperThreads.stoppers }

  /// stop_machine runs of `stop_machine_lockstep` (`stop_runs=` sets it: nested KVM,
  /// where every halt and IPI costs milliseconds, runs fewer), and the most time it may
  /// take.
  static let defaultLockstepRuns = 10_000
  nonisolated(unsafe) static var lockstepRuns = 10_000
  static let lockstepBoundNanoseconds: UInt64 = 240_000_000_000

  /// What a stop function saw where it ran.
  struct Sighting {
    var cpu = -1
    var preemptCount = -1
    var inStopper = false
    var interruptsOff = false
  }

  static let recordSighting: StopFunction = { info in
    let sighting = info!.assumingMemoryBound(to: Sighting.self)
    sighting.pointee.cpu = X86_64Platform.currentCPU.rawValue
    sighting.pointee.preemptCount = Threads.scheduler.preemptCount
    sighting.pointee.inStopper = Threads.scheduler.current.pointee.priority == .stopper
    sighting.pointee.interruptsOff = !CPUInstructions.interruptsEnabled
    return 0
  }

  static let failWithSeven: StopFunction = { _ in 7 }

  /// On every online CPU, the caller's own among them: the function runs on that CPU,
  /// in its stopper thread, with preemption off.
  static func stopOneCPURunsThere() -> TestResult {
    for cpu in CPUs.online {
      var sighting = Sighting()
      do throws(StopError) { try stoppers.stopOneCPU(cpu, recordSighting, &sighting) } catch {
        return .fail("stopOneCPU(\(cpu)) failed")
      }
      guard sighting.cpu == cpu.rawValue else { return .fail("stopOneCPU(\(cpu)) ran on CPU \(sighting.cpu)") }
      guard sighting.inStopper, sighting.preemptCount > 0 else {
        return .fail("stopOneCPU(\(cpu)) ran outside a stopper or with preemption on")
      }
    }
    return .pass
  }

  /// A CPU number out of range; a non-zero result; an offline CPU, if the machine has one.
  static func stopOneCPUErrors() -> TestResult {
    let invalid = CPUIndex(CPUs.possibleCount)
    guard expect({ () throws(StopError) in try stoppers.stopOneCPU(invalid, failWithSeven) }, .invalidCPU(invalid)),
      expect({ () throws(StopError) in try stoppers.stopOneCPU(CPUIndex(-1), failWithSeven) }, .invalidCPU(CPUIndex(-1))),
      expect({ () throws(StopError) in try stoppers.stopOneCPU(.boot, failWithSeven) }, .failed(7))
    else { return .fail("a bad CPU number or a failing function did not give its error") }
    if let offline = CPUs.possible.first(where: { !CPUs.online.contains($0) }) {
      guard expect({ () throws(StopError) in try stoppers.stopOneCPU(offline, failWithSeven) }, .notFound) else {
        return .fail("stopOneCPU on offline CPU \(offline) was not refused as not found")
      }
    }
    return .pass
  }

  static func expect(_ body: () throws(StopError) -> Void, _ wanted: StopError) -> Bool {
    do throws(StopError) {
      try body()
      return false
    } catch {
      return error == wanted
    }
  }

  /// Queued on every online CPU without waiting: the buffer is busy until the function
  /// has run there, then free.
  static func stopOneCPUNoWait() -> TestResult {
    for cpu in CPUs.online {
      var sighting = Sighting()
      var work = StopWork<X86_64Platform>()
      let queued = withUnsafeMutablePointer(to: &work) { work in
        stoppers.stopOneCPUNoWait(cpu, recordSighting, &sighting, work: work)
      }
      guard queued else { return .fail("stopOneCPUNoWait(\(cpu)) was not queued") }
      let freed = waitUntil(milliseconds: 5000) { withUnsafeMutablePointer(to: &work) { !$0.pointee.isBusy } }
      guard freed else { return .fail("CPU \(X86_64Platform.currentCPU) waited 5 s for the work queued on CPU \(cpu)") }
      guard sighting.cpu == cpu.rawValue, sighting.inStopper else {
        return .fail("stopOneCPUNoWait(\(cpu)) ran on CPU \(sighting.cpu)")
      }
    }
    var work = StopWork<X86_64Platform>()
    let refused = withUnsafeMutablePointer(to: &work) { work in
      stoppers.stopOneCPUNoWait(CPUIndex(CPUs.possibleCount), failWithSeven, nil, work: work)
    }
    return refused ? .fail("stopOneCPUNoWait on a CPU out of range was queued") : .pass
  }

  /// Each pair (0, k) and (k, 0): the function runs once, on the first CPU, with
  /// interrupts off on both, which went through the states together. The same CPU
  /// twice is refused.
  static func stopTwoCPUs() -> TestResult {
    guard expect({ () throws(StopError) in try stoppers.stopTwoCPUs(.boot, .boot, failWithSeven) }, .invalidCPU(.boot))
    else { return .fail("stopTwoCPUs with one CPU twice was not refused") }
    let online = CPUs.online
    guard online.count > 1 else { return .skip("one CPU online") }
    for other in online where other != .boot {
      for (first, second) in [(CPUIndex.boot, other), (other, CPUIndex.boot)] {
        var sighting = Sighting()
        do throws(StopError) { try stoppers.stopTwoCPUs(first, second, recordSighting, &sighting) } catch {
          return .fail("stopTwoCPUs(\(first), \(second)) failed")
        }
        guard sighting.cpu == first.rawValue, sighting.interruptsOff else {
          return .fail("stopTwoCPUs(\(first), \(second)) ran on CPU \(sighting.cpu) or with interrupts on")
        }
        if let problem = StopTraceCheck.problem(in: CPUSet([first, second]), generation: stoppers.lastStopGeneration) {
          return .fail(problem)
        }
      }
    }
    guard expect({ () throws(StopError) in try stoppers.stopTwoCPUs(.boot, CPUIndex(CPUs.possibleCount), failWithSeven) }, .invalidCPU(CPUIndex(CPUs.possibleCount)))
    else { return .fail("stopTwoCPUs with a CPU out of range was not refused") }
    return .pass
  }

  /// Counts per CPU for the lockstep run.
  final class Tally {
    let counts: UnsafeMutablePointer<Atomic<Int>>
    let interruptsOn = Atomic<Int>(0)
    init() {
      counts = .allocate(capacity: CPUs.possibleCount)
      for index in 0..<CPUs.possibleCount { (counts + index).initialize(to: Atomic<Int>(0)) }
    }
    deinit {
      counts.deinitialize(count: CPUs.possibleCount)
      counts.deallocate()
    }
    var info: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
    static func from(_ info: UnsafeMutableRawPointer?) -> Tally {
      Unmanaged<Tally>.fromOpaque(info!).takeUnretainedValue()
    }
    func count(_ cpu: CPUIndex) -> Int { counts[cpu.rawValue].load(ordering: .relaxed) }
  }

  static let countHere: StopFunction = { info in
    let tally = Tally.from(info)
    tally.counts[X86_64Platform.currentCPU.rawValue].wrappingAdd(1, ordering: .relaxed)
    if CPUInstructions.interruptsEnabled { tally.interruptsOn.wrappingAdd(1, ordering: .relaxed) }
    return 0
  }

  /// 10^4 stop_machine runs, every tenth with `cpus: nil` (the first online CPU only),
  /// the rest on every online CPU. After each: every CPU's record is of that run, has
  /// all four states in order with interrupts off in RUN, and shows no CPU entering
  /// EXIT before all had entered RUN; the function ran exactly once per active CPU.
  static func stopMachineLockstep() -> TestResult {
    let online = CPUs.online
    let tally = Tally()
    let start = Clock.nanoseconds()
    var allRuns = 0
    var firstOnlyRuns = 0
    for run in 0..<lockstepRuns {
      if Clock.nanoseconds() - start > lockstepBoundNanoseconds {
        return .fail("\(run) of \(lockstepRuns) stop_machine runs took over \(lockstepBoundNanoseconds / 1_000_000_000) s")
      }
      let firstOnly = run % 10 == 9
      do throws(StopError) {
        try stoppers.stopMachine(countHere, tally.info, cpus: firstOnly ? nil : online)
      } catch {
        return .fail("stop_machine run \(run) failed")
      }
      if firstOnly { firstOnlyRuns += 1 } else { allRuns += 1 }
      if let problem = StopTraceCheck.problem(in: online, generation: stoppers.lastStopGeneration) {
        return .fail("run \(run): \(line: problem)")
      }
    }
    for cpu in online {
      let wanted = allRuns + (cpu == online.first! ? firstOnlyRuns : 0)
      guard tally.count(cpu) == wanted else {
        return .fail("the function ran \(tally.count(cpu)) times on CPU \(cpu), not \(wanted)")
      }
    }
    guard tally.interruptsOn.load(ordering: .relaxed) == 0 else { return .fail("the function ran with interrupts on") }
    let elapsed = Clock.nanoseconds() - start
    KTAP.diagnostic(
      "\(lockstepRuns) stop_machine runs on \(online.count) CPUs in \(elapsed / 1_000_000) ms (\(elapsed / UInt64(lockstepRuns) / 1000) us each)"
    )
    return .pass
  }
}
