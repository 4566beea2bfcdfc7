import Synchronization

/// What `make run` shows of the stop machinery, after the cross-call demo: one
/// `stop_machine` over every online CPU with each CPU's way through the stop's states,
/// then the last CPU taken offline and brought back. Runs when the command line asks
/// for no tests or benchmark.
enum StopDemo {
  /// The demo's stop function: counts the CPU it runs on (a `CPUCounters`).
  private static let countHere: StopFunction = { info in
    let counters = info!.assumingMemoryBound(to: Atomic<Int>.self)
    // Release pairs with the acquire in CPUCounters.value(_:).
    counters[X86_64Platform.currentCPU.rawValue].wrappingAdd(1, ordering: .releasing)
    return 0
  }

  /// Returns whether everything it showed was right.
  static func run() -> Bool {
    guard stopMachineTable() else { return false }
    return StopDemoHotplug.run()
  }

  /// One `stop_machine` on every online CPU, each running the function, and the table
  /// of when each CPU entered each state. Two stops not shown first, so that the one shown
  /// is not the first each stopper runs (TCG translates its code then). The hotplug
  /// lock is held from before the stop until its traces are read, so the CPUs in the
  /// table are the ones it stopped.
  static func stopMachineTable() -> Bool {
    let stoppers = StopperThreads.stoppers
    for _ in 0..<2 { try? stoppers.stopMachine({ _ in 0 }) }
    stoppers.hotplugLock.lock(in: Threads.scheduler)
    defer { stoppers.hotplugLock.unlock(in: Threads.scheduler) }
    let online = CPUs.online
    let ran = CPUCounters()
    do throws(StopError) {
      try stoppers.stopMachineCPUsLocked(countHere, ran.info, cpus: online)
    } catch {
      log("stop: stop_machine failed")
      return false
    }
    let returned = CPUInstructions.readTSC()
    let generation = stoppers.lastStopGeneration
    let called = stoppers.trace(of: .boot).called
    var cpus = LogLine()
    cpus.append(cpuList: online.map { $0.rawValue })
    log(
      "stop: stop_machine on CPUs \(line: cpus), each running the function; when each CPU entered each state,"
    )
    log("stop: in us after the call:")
    log("stop:   CPU   PREPARE  DISABLE_IRQ       RUN      EXIT      left  ran")
    for cpu in online { log(row(cpu, called: called, ran: ran.value(cpu))) }
    let problem =
      StopTraceCheck.problem(in: online, generation: generation)
      ?? (online.allSatisfy { ran.value($0) == 1 }
        ? nil : "the function did not run exactly once on every CPU")
    let verdict: LogLine =
      problem.map { "WRONG: \(line: $0)" }
      ?? "every CPU saw the states in order, none left before all had reached RUN"
    log("stop: the call returned after \(line: micros(returned &- called)) us; \(line: verdict)")
    return problem == nil
  }

  /// One CPU's line of the table.
  private static func row(_ cpu: CPUIndex, called: UInt64, ran: Int) -> LogLine {
    let trace = StopperThreads.stoppers.trace(of: cpu)
    var line: LogLine = "stop: "
    append(&line, "\(cpu.rawValue)", width: 5)
    for (time, width) in [
      (trace.prepare, 10), (trace.disableInterrupts, 13), (trace.run, 10), (trace.exit, 10), (trace.left, 10),
    ] {
      append(&line, micros(time &- called), width: width)
    }
    append(&line, "\(ran)", width: 5)
    return line
  }

  /// `ticks` of the TSC in microseconds, with one decimal: `12.3`.
  static func micros(_ ticks: UInt64) -> LogLine {
    let nanoseconds = Clock.ticksToNanoseconds(ticks)
    return "\(nanoseconds / 1000).\(nanoseconds % 1000 / 100)"
  }

  /// Appends `text` right-aligned in `width` characters.
  static func append(_ line: inout LogLine, _ text: LogLine, width: Int) {
    for _ in text.count..<max(width, text.count) { line.append(" ") }
    line = "\(line: line)\(line: text)"
  }
}
