import Synchronization

/// More `stop` cases: stop_cpus and its try variant, stop_machine's subsets and errors,
/// the inactive-CPU variant, preemption by a stopper, a leaked preemption count.
enum StopSuiteCases {
  static var stoppers: Stoppers<X86_64Platform> { StopperThreads.stoppers }

  static func stopCPUsAndTry() -> TestResult {
    let online = CPUs.online
    let tally = StopSuite.Tally()
    do throws(StopError) { try stoppers.stopCPUs(online, StopSuite.countHere, tally.info) } catch {
      return .fail("stopCPUs on every online CPU failed")
    }
    for cpu in online where tally.count(cpu) != 1 {
      return .fail("stopCPUs ran \(tally.count(cpu)) times on CPU \(cpu)")
    }
    guard StopSuite.expect({ () throws(StopError) in try stoppers.stopCPUs(CPUSet(), StopSuite.countHere, tally.info) }, .notFound),
      StopSuite.expect({ () throws(StopError) in try stoppers.stopCPUs(online, StopSuite.failWithSeven) }, .failed(7))
    else { return .fail("stopCPUs on no CPU, or with a failing function, did not give its error") }
    guard online.count > 1 else { return .skip("one CPU online: no second caller to hold the mutex") }
    // A thread on CPU 1 holds the stop mutex with stopCPUs({1}) whose function waits
    // until we have tried.
    let hold = Hold()
    let group = ThreadGroup(capacity: 1)
    group.start(ThreadName("stop-holder"), on: CPUIndex(1), holdStopCPUs, hold.info)
    guard waitUntil(milliseconds: 5000, { hold.holding.load(ordering: .acquiring) }) else {
      hold.release.store(true, ordering: .relaxed)
      _ = group.wait(milliseconds: 5000)
      return .fail("CPU 0 waited 5 s for CPU 1's stopCPUs function to start")
    }
    let busy = StopSuite.expect({ () throws(StopError) in try stoppers.tryStopCPUs(online, StopSuite.countHere, tally.info) }, .again)
    hold.release.store(true, ordering: .releasing)
    if let late = group.wait(milliseconds: 5000) { return .fail("the holder: \(line: late)") }
    guard busy else { return .fail("tryStopCPUs did not return .again while stopCPUs held the mutex") }
    do throws(StopError) { try stoppers.tryStopCPUs(online, StopSuite.countHere, tally.info) } catch {
      return .fail("tryStopCPUs failed with the mutex free")
    }
    return .pass
  }

  final class Hold {
    let holding = Atomic<Bool>(false)
    let release = Atomic<Bool>(false)
    var info: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
    static func from(_ info: UnsafeMutableRawPointer?) -> Hold { Unmanaged<Hold>.fromOpaque(info!).takeUnretainedValue() }
  }

  private static let holdStopCPUs: CallFunction = { info in
    _ = try? StopperThreads.stoppers.stopCPUs(CPUSet([X86_64Platform.currentCPU]), waitForRelease, info)
  }

  /// Inside the stopper on CPU 1: signals it holds, waits (bounded) to be released.
  private static let waitForRelease: StopFunction = { info in
    let hold = Hold.from(info)
    hold.holding.store(true, ordering: .releasing)
    let start = Clock.nanoseconds()
    while !hold.release.load(ordering: .acquiring) && Clock.nanoseconds() - start < 5_000_000_000 {
      CPUInstructions.pause()
    }
    return 0
  }

  /// stop_machine with a subset of CPUs active runs the function on those only; a
  /// failing function's result comes back.
  static func stopMachineSubsets() -> TestResult {
    let online = CPUs.online
    let subset = CPUSet(online.filter { $0.rawValue % 2 == 1 })
    let tally = StopSuite.Tally()
    do throws(StopError) { try stoppers.stopMachine(StopSuite.countHere, tally.info, cpus: subset) } catch {
      return .fail("stop_machine on the odd CPUs failed")
    }
    for cpu in online where tally.count(cpu) != (subset.contains(cpu) ? 1 : 0) {
      return .fail("stop_machine on the odd CPUs ran \(tally.count(cpu)) times on CPU \(cpu)")
    }
    if let problem = StopTraceCheck.problem(in: online, generation: stoppers.lastStopGeneration) { return .fail(problem) }
    guard StopSuite.expect({ () throws(StopError) in try stoppers.stopMachine(StopSuite.failWithSeven, cpus: online) }, .failed(7))
    else { return .fail("stop_machine did not return the function's failure") }
    return .pass
  }

  /// A CPU made inactive (as during its hotplug start) calls the busy-waiting variant
  /// from a thread that holds interrupts off: every active CPU and itself go through
  /// the states; the function runs where asked.
  static func fromInactiveCPU() -> TestResult {
    let online = CPUs.online
    guard online.count > 1 else { return .skip("one CPU online") }
    let caller = CPUIndex(online.count - 1)
    let tally = StopSuite.Tally()
    let group = ThreadGroup(capacity: 1)
    stoppers.hotplugLock.lock(in: Threads.scheduler)
    CPUs.setActive(caller, false)
    group.start(ThreadName("stop-inactive"), on: caller, callFromInactive, tally.info)
    let late = group.wait(milliseconds: 10_000)
    CPUs.setActive(caller, true)
    stoppers.hotplugLock.unlock(in: Threads.scheduler)
    if let late { return .fail("the inactive CPU's caller: \(line: late)") }
    guard tally.interruptsOn.load(ordering: .relaxed) == 0 else { return .fail("the function ran with interrupts on") }
    for cpu in online where tally.count(cpu) != 1 {
      return .fail("stop_machine_from_inactive_cpu ran \(tally.count(cpu)) times on CPU \(cpu), not once")
    }
    if let problem = StopTraceCheck.problem(in: online, generation: stoppers.lastStopGeneration) { return .fail(problem) }
    return .pass
  }

  private static let callFromInactive: CallFunction = { info in
    CPUInstructions.disableInterrupts()
    _ = try? StopperThreads.stoppers.stopMachineFromInactiveCPU(StopSuite.countHere, info, cpus: CPUs.online)
    CPUInstructions.enableInterrupts()
  }

  /// A normal thread spinning with interrupts on is preempted by the stopper at once:
  /// the function runs while the spinner still spins.
  static func stopperPreemptsSpinner() -> TestResult {
    let online = CPUs.online
    guard online.count > 1 else { return .skip("one CPU online") }
    let target = CPUIndex(1)
    let hold = Hold()
    let group = ThreadGroup(capacity: 1)
    group.start(ThreadName("stop-spinner"), on: target, spin, hold.info)
    guard waitUntil(milliseconds: 5000, { hold.holding.load(ordering: .acquiring) }) else {
      hold.release.store(true, ordering: .relaxed)
      _ = group.wait(milliseconds: 5000)
      return .fail("CPU 0 waited 5 s for the spinner on CPU 1 to start")
    }
    var sighting = StopSuite.Sighting()
    let spinningBefore = !hold.release.load(ordering: .acquiring)
    do throws(StopError) { try stoppers.stopOneCPU(target, StopSuite.recordSighting, &sighting) } catch {
      hold.release.store(true, ordering: .relaxed)
      return .fail("stopOneCPU failed")
    }
    // The spinner stops only when told (or after 5 s): if it was still spinning
    // after the stop returned, the stopper took the CPU from it.
    let stillSpinning = !hold.release.exchange(true, ordering: .acquiringAndReleasing)
    if let late = group.wait(milliseconds: 10_000) { return .fail("the spinner: \(line: late)") }
    guard spinningBefore && stillSpinning && sighting.cpu == target.rawValue else {
      return .fail("the stopper did not run on CPU 1 while its thread spun")
    }
    return .pass
  }

  /// Spins with interrupts on until released (bounded 5 s; then it marks itself done).
  private static let spin: CallFunction = { info in
    let hold = Hold.from(info)
    hold.holding.store(true, ordering: .releasing)
    let start = Clock.nanoseconds()
    while !hold.release.load(ordering: .acquiring) {
      if Clock.nanoseconds() - start > 5_000_000_000 {
        hold.release.store(true, ordering: .releasing)  // gave up: the test sees it
        return
      }
      CPUInstructions.pause()
    }
  }

  private static let leakPreemption: StopFunction = { _ in
    Threads.scheduler.preemptDisable()
    return 0
  }

  /// A function that leaves preemption disabled is reported and the count put back.
  static func leakedPreemption() -> TestResult {
    let before = stoppers.statistics.leakedPreemption.load(ordering: .relaxed)
    do throws(StopError) { try stoppers.stopOneCPU(.boot, leakPreemption) } catch { return .fail("stopOneCPU failed") }
    guard stoppers.statistics.leakedPreemption.load(ordering: .relaxed) == before + 1 else {
      return .fail("the leaked preemption count was not reported")
    }
    var sighting = StopSuite.Sighting()
    do throws(StopError) { try stoppers.stopOneCPU(.boot, StopSuite.recordSighting, &sighting) } catch {
      return .fail("stopOneCPU failed after the leak")
    }
    guard sighting.preemptCount == 1, Threads.scheduler.preemptCount == 0 else {
      return .fail("the preemption count was not put back (stopper saw \(sighting.preemptCount))")
    }
    return .pass
  }
}
