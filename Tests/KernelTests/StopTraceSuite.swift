import Synchronization

/// `ktest=stop_trace`: one `stop_machine` across every online CPU, its per-CPU timeline
/// printed as `stoptrace` lines, which `make trace` turns into a Chrome trace-event file
/// and the harness validates. The case itself checks what the file must show: every
/// CPU took part, saw the four states in order, and none left before all reached RUN.
enum StopTraceSuite {
  static let suite = KernelTestSuite(
    name: "stop_trace",
    cases: [KernelTestCase(name: "stop_machine_timeline", run: timeline)])

  private static let nothing: StopFunction = { _ in 0 }

  static func timeline() -> TestResult {
    let stoppers = StopperThreads.stoppers
    // A few warm-up stops, so the one traced is not the first of each stopper.
    for _ in 0..<4 { try? stoppers.stopMachine(nothing, cpus: CPUs.online) }
    // The traced stop holds the hotplug lock until its trace is read: the online set
    // stays the one it stopped.
    stoppers.hotplugLock.lock(in: Threads.scheduler)
    defer { stoppers.hotplugLock.unlock(in: Threads.scheduler) }
    let online = CPUs.online
    do throws(StopError) {
      try stoppers.stopMachineCPUsLocked(nothing, cpus: online)
    } catch {
      return .fail("stop_machine failed")
    }
    if let problem = StopTraceCheck.problem(in: online, generation: stoppers.lastStopGeneration) {
      return .fail(problem)
    }
    print(online, generation: stoppers.lastStopGeneration)
    return .pass
  }

  /// The `stoptrace` block the harness reads (absolute TSC ticks).
  static func print(_ cpus: CPUSet, generation: UInt64) {
    log("stoptrace begin stop=\(generation) cpus=\(cpus.count) tsc_khz=\(Clock.nanosecondsToTicks(1_000_000))")
    for cpu in cpus {
      let trace = StopperThreads.stoppers.trace(of: cpu)
      log(
        "stoptrace cpu=\(cpu.rawValue) active=\(trace.wasActive ? 1 : 0) called=\(trace.called) prepare=\(trace.prepare) disable_irq=\(trace.disableInterrupts) run=\(trace.run) exit=\(trace.exit) left=\(trace.left)"
      )
    }
    log("stoptrace end")
  }
}

/// What every multi-CPU stop's timeline must show, checked from the per-CPU records.
enum StopTraceCheck {
  /// nil if the stop numbered `generation` was right on every CPU of `cpus`: each took
  /// part (its record is of that stop), saw all four states in order with interrupts
  /// off in RUN, and left only after every CPU had entered RUN; else what was wrong.
  static func problem(in cpus: CPUSet, generation: UInt64) -> LogLine? {
    var latestRun: UInt64 = 0
    for cpu in cpus {
      let trace = StopperThreads.stoppers.trace(of: cpu)
      guard trace.generation == generation else {
        return "CPU \(cpu) has no record of stop #\(generation) (its last: #\(trace.generation))"
      }
      guard trace.statesSeen == 4 else { return "CPU \(cpu) saw \(Int(trace.statesSeen)) state changes, not 4" }
      guard trace.called <= trace.prepare, trace.prepare <= trace.disableInterrupts,
        trace.disableInterrupts <= trace.run, trace.run <= trace.exit, trace.exit <= trace.left
      else { return "CPU \(cpu) entered its states out of order" }
      guard trace.interruptsOffInRun else { return "CPU \(cpu) had interrupts on in RUN" }
      latestRun = max(latestRun, trace.run)
    }
    for cpu in cpus where StopperThreads.stoppers.trace(of: cpu).exit < latestRun {
      return "CPU \(cpu) entered EXIT before every CPU had entered RUN"
    }
    return nil
  }
}
