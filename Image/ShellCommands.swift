import Synchronization

/// What each serial-shell command does (`Shell`), its argument already checked by
/// `ShellCommand.parse`. Every line a command prints starts with its name, or with
/// `error:` when the kernel refused it (a CPU that is not online, a hotplug refusal).
enum ShellCommands {
  /// Runs `command`; returns QEMU's exit status when the command ends the shell.
  /// Boot CPU, thread context, interrupts on.
  static func run(_ command: ShellCommand) -> DebugExit.Status? {
    switch command {
    case .empty: break
    case .help: help()
    case .cpus: cpus()
    case .call(let cpu): call(cpu)
    case .stop: _ = StopDemo.stopMachineTable()
    case .offline(let cpu): hotplug(cpu, offline: true)
    case .online(let cpu): hotplug(cpu, offline: false)
    case .bench: ShellBench.run()
    case .torture(let seconds): torture(seconds: seconds)
    case .sendstop: return sendStop()
    case .panic:
      log("panic: a deliberate panic from the shell; the panic report follows and QEMU exits with status 37")
      Panic.halt("deliberate panic from the shell")
    case .exit:
      log("exit: leaving QEMU")
      return .passed
    }
    return nil
  }

  private static func help() {
    log("help: commands (CPU is a CPU number, 0-\(CPUs.possibleCount - 1) here):")
    for (command, summary) in ShellCommand.usage {
      var line: LogLine = "  "
      line.append(command)
      command.withUTF8Buffer { for _ in $0.count..<18 { line.append(" ") } }
      line.append(summary)
      log(line)
    }
  }

  /// The CPU table: every possible CPU, online or not.
  private static func cpus() {
    let stoppers = StopperThreads.stoppers
    log("CPU  APIC  state     active  stopper  interrupts")
    for index in 0..<CPUs.possibleCount {
      let cpu = CPUIndex(index)
      let block = PerCPU.block(cpu)
      var line = LogLine()
      StopDemo.append(&line, "\(index)", width: 3)
      StopDemo.append(&line, "\(UInt64(CPUs.apicID(of: cpu).rawValue))", width: 6)
      line.append("  ")
      let state = name(of: CPUs.state(of: cpu))
      line.append(state)
      state.withUTF8Buffer { for _ in $0.count..<10 { line.append(" ") } }
      line.append(block.pointee.active.load(ordering: .acquiring) ? "yes     " : "no      ")
      line.append(stoppers.isParked(cpu) ? "parked " : stoppers.isEnabled(cpu) ? "ready  " : "off    ")
      StopDemo.append(&line, "\(block.pointee.interruptsTaken.load(ordering: .relaxed))", width: 12)
      if cpu == X86_64Platform.currentCPU { line.append("  (the shell)") }
      log(line)
    }
  }

  /// A waiting `smp_call_function_single` to `cpu`, checked to have run there.
  private static func call(_ cpu: CPUIndex) {
    let state = CPUs.state(of: cpu)
    guard state == .online else {
      log("error: CPU \(cpu) is not online (\(name(of: state))); online \(cpu) brings it back")
      return
    }
    let ranOn = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 1)
    ranOn.initialize(to: Atomic<Int>(-1))
    defer { ranOn.deallocate() }  // a waiting call: the function has run when it returns
    let start = CPUInstructions.readTSC()
    do throws(CrossCallError) {
      try X86_64Platform.calls.callSingle(on: cpu, recordCPU, UnsafeMutableRawPointer(ranOn), wait: true)
    } catch {
      log("error: smp_call_function_single to CPU \(cpu) refused: CPU \(cpu) is not online")
      return
    }
    let nanoseconds = Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start)
    // Acquire pairs with the release in recordCPU; the waiting call's end orders it too.
    let ran = ranOn.pointee.load(ordering: .acquiring)
    let how: StaticString = cpu == X86_64Platform.currentCPU ? "the calling CPU: run here, no IPI" : "IPI, waiting"
    if ran == cpu.rawValue {
      log("call: CPU \(cpu) ran the function; round trip \(line: micros(nanoseconds)) us (smp_call_function_single, \(how))")
    } else {
      log("call: WRONG: the function for CPU \(cpu) ran on CPU \(ran)")
    }
  }

  private static let recordCPU: CallFunction = { info in
    // Release pairs with the caller's acquire load.
    info!.assumingMemoryBound(to: Atomic<Int>.self).pointee.store(
      X86_64Platform.currentCPU.rawValue, ordering: .releasing)
  }

  /// `cpu_down` (`offline`) or `cpu_up`, timed, with the kernel's refusal if it refused.
  private static func hotplug(_ cpu: CPUIndex, offline: Bool) {
    let start = Clock.nanoseconds()
    do throws(HotplugError) {
      if offline { try Hotplug.cpuDown(cpu) } else { try Hotplug.cpuUp(cpu) }
    } catch {
      log("error: \(line: describe(error))")
      return
    }
    let took = millis(Clock.nanoseconds() - start)
    if offline {
      log("offline: CPU \(cpu) is offline (\(name(of: CPUs.state(of: cpu)))) after \(line: took) ms")
    } else {
      log("online: CPU \(cpu) is online after \(line: took) ms")
    }
  }

  /// The cross-call torture (`TortureSuite`'s workers, two threads on every online CPU)
  /// for `seconds`, with its counts and verdict.
  private static func torture(seconds: Int) {
    let online = CPUs.online
    let threads = TortureSuite.threadsPerCPU
    let seed = CPUInstructions.readTSC() & 0xFFFF_FFFF
    let start = Clock.nanoseconds()
    let state = TortureState(
      workers: threads * online.count, operationsPerWorker: Int.max, seed: seed,
      deadline: start + UInt64(seconds) * 1_000_000_000)
    log("torture: \(seconds) s of random cross-calls from \(threads) threads on each of \(online.count) CPUs, seed \(seed)")
    // Past the deadline, a worker finishes the call in hand: a minute is far more than that.
    let bound = UInt64(seconds) * 1000 + 60_000
    if let late = TortureSuite.runWorkers(state, on: online, threadsPerCPU: threads, bound: bound) {
      log("torture: FAILED: threads not done \(bound) ms after the start: \(line: late)")
      return
    }
    let elapsed = Clock.nanoseconds() - start
    let issued = state.issued.load(ordering: .relaxed)
    let executed = state.executed.load(ordering: .relaxed)
    let errors = state.errors.load(ordering: .relaxed)
    let perSecond = elapsed > 0 ? UInt64(executed) * 1_000_000_000 / elapsed : 0
    log(
      "torture: \(issued) calls issued, \(executed) run, \(errors) errors, \(state.skipped.load(ordering: .relaxed)) async skips (record busy), \(perSecond) calls/s"
    )
    if errors == 0 && issued == executed {
      log("torture: passed")
    } else {
      log("torture: FAILED (seed \(seed))")
    }
  }

  /// `smp_send_stop` (`SendStopDemo`: a rehearsal, then the stop for good, with how each
  /// CPU was stopped); the machine cannot go on, so the shell ends.
  private static func sendStop() -> DebugExit.Status {
    log("sendstop: stopping every other CPU for good with smp_send_stop, as shutdown does; the shell then leaves QEMU")
    let stopped = SendStopDemo.run()
    let verdict: StaticString = stopped ? "every other CPU stopped" : "WRONG: not every CPU stopped"
    log("sendstop: \(verdict); leaving QEMU")
    return stopped ? .passed : .testsFailed
  }

  /// A hotplug refusal, for the user.
  private static func describe(_ error: HotplugError) -> LogLine {
    switch error {
    case .invalidCPU(let cpu): "CPU \(cpu) does not exist"
    case .notOnline(let cpu, let state): "CPU \(cpu) is not online (\(name(of: state)))"
    case .notOffline(let cpu, let state): "CPU \(cpu) is not offline (\(name(of: state)))"
    case .lastOnlineCPU(let cpu): "CPU \(cpu) is the last online CPU"
    case .hasThreads(let cpu, let count):
      "CPU \(cpu) runs \(count) thread(s) of its own, which would never run again (threads here do not migrate)\(cpu == X86_64Platform.currentCPU ? shellsOwn : "")"
    case .didNotDie(let cpu, let milliseconds):
      "CPU \(cpu) went through the stop but did not report itself dead within \(milliseconds) ms; it stays dying"
    case .didNotComeOnline(let cpu): "CPU \(cpu) did not come online after INIT-SIPI-SIPI and a retry; it is failed"
    }
  }

  private static let shellsOwn: StaticString = "; the shell is one"

  /// The lifecycle state's name, as docs/cpu-lifecycle.md writes it.
  static func name(of state: CPUState) -> StaticString {
    switch state {
    case .possible: "possible"
    case .starting: "starting"
    case .retrying: "retrying"
    case .online: "online"
    case .failed: "failed"
    case .dying: "dying"
    case .dead: "dead"
    case .stopped: "stopped"
    }
  }

  /// `nanoseconds` in microseconds with one decimal.
  static func micros(_ nanoseconds: UInt64) -> LogLine {
    "\(nanoseconds / 1000).\(nanoseconds % 1000 / 100)"
  }

  /// `nanoseconds` in milliseconds with one decimal.
  static func millis(_ nanoseconds: UInt64) -> LogLine {
    "\(nanoseconds / 1_000_000).\(nanoseconds % 1_000_000 / 100_000)"
  }
}
