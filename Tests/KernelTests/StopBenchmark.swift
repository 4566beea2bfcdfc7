/// `bench`: the stop machinery's figures, printed as `bench <metric> ns <samples...>`.
/// The caller is `main` on CPU 0; every other CPU is idle in `hlt` until a stop wakes
/// its stopper. Each metric takes its samples or stops at its time budget (64 vCPUs
/// under TCG make a stop_machine take up to a second), warm-up calls included.
///
/// `stop_one_self`, `stop_one_remote` (CPU 0 to CPU 1), `stop_two` (CPUs 0 and 1),
/// `stop_machine` (every online CPU, `cpus: nil`): from the call to its return.
/// `stop_machine_irqoff`: per CPU and stop of `stop_machine`, from its DISABLE_IRQ entry
/// to its leaving the stop (its trace). `cpu_down`, `cpu_up`: the last online CPU.
enum StopBenchmark {
  /// One metric's plan: samples wanted, and the time after which it stops early.
  struct Budget {
    let samples: Int
    let milliseconds: UInt64
  }

  /// Budgets measured under TCG on the 2-core host: the stop_one and stop_two samples
  /// take milliseconds in all; a stop_machine takes 80-160 ms at 8 vCPUs and 0.3-1 s at
  /// 64 (seconds when the host is loaded), a cpu_down 100 ms at 8 and 0.2-0.7 s at 64.
  /// At 64 vCPUs the whole of these figures stays near 10 s (the harness allows 90 s a
  /// boot, of which the cross-call figures take 55).
  static let stopOne = Budget(samples: 200, milliseconds: 1_000)
  static let stopTwo = Budget(samples: 100, milliseconds: 1_000)
  static let stopMachine = Budget(samples: 50, milliseconds: 4_000)
  static let hotplug = Budget(samples: 15, milliseconds: 4_000)
  static let warmUps = 4

  static var stoppers: Stoppers<X86_64Platform> { StopperThreads.stoppers }
  private static let nothing: StopFunction = { _ in 0 }

  static func run() {
    let me = X86_64Platform.currentCPU
    guard let partner = CPUs.online.first(where: { $0 != me }) else { return }
    measure("stop_one_self", stopOne) { () throws(StopError) in try stoppers.stopOneCPU(me, nothing) }
    measure("stop_one_remote", stopOne) { () throws(StopError) in try stoppers.stopOneCPU(partner, nothing) }
    measure("stop_two", stopTwo) { () throws(StopError) in try stoppers.stopTwoCPUs(me, partner, nothing) }
    stopMachineFigures()
    StopBenchHotplug.run(hotplug)
    log(
      "bench-note stop_*: caller main on CPU \(me.rawValue), targets idle in hlt (their stoppers asleep); stop_one_remote and stop_two with CPU \(partner.rawValue); call to return, TSC"
    )
    log(
      "bench-note stop_machine: all \(CPUs.online.count) online CPUs, cpus nil, call to return; stop_machine_irqoff: each CPU's DISABLE_IRQ entry to its leaving the stop, from its stop trace"
    )
  }

  /// Prints `budget.samples` timings of `call` (fewer if its time runs out) as
  /// `bench <name> ns ...`; a call that fails is left out and counted.
  private static func measure(_ name: StaticString, _ budget: Budget, _ call: () throws(StopError) -> Void) {
    let deadline = Clock.nanoseconds() + budget.milliseconds * 1_000_000
    for _ in 0..<warmUps where Clock.nanoseconds() < deadline { try? call() }
    var line = BenchLine(name, unit: "ns")
    var failed = 0
    var taken = 0
    while taken < budget.samples && Clock.nanoseconds() < deadline {
      let start = CPUInstructions.readTSC()
      do throws(StopError) {
        try call()
        line.add(Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start))
      } catch {
        failed += 1
      }
      taken += 1
    }
    line.flush()
    report(name, budget, taken: taken, failed: failed)
  }

  /// `stop_machine` over every online CPU, and each CPU's interrupts-off stretch in it.
  private static func stopMachineFigures() {
    let deadline = Clock.nanoseconds() + stopMachine.milliseconds * 1_000_000
    // One warm-up only: at 64 vCPUs under TCG a stop_machine takes a second.
    try? stoppers.stopMachine(nothing)
    var calls = BenchLine("stop_machine", unit: "ns")
    var irqOff = BenchLine("stop_machine_irqoff", unit: "ns")
    var failed = 0
    var taken = 0
    var untraced = 0
    while taken < stopMachine.samples && Clock.nanoseconds() < deadline {
      taken += 1
      let online = CPUs.online  // nothing takes CPUs down during the benchmark
      let start = CPUInstructions.readTSC()
      do throws(StopError) { try stoppers.stopMachine(nothing) } catch {
        failed += 1
        continue
      }
      calls.add(Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start))
      // Every trace is written before its CPU signals the end of its part.
      let generation = stoppers.lastStopGeneration
      for cpu in online {
        let trace = stoppers.trace(of: cpu)
        guard trace.generation == generation else {
          untraced += 1
          continue
        }
        irqOff.add(Clock.ticksToNanoseconds(trace.left &- trace.disableInterrupts))
      }
    }
    calls.flush()
    irqOff.flush()
    report("stop_machine", stopMachine, taken: taken, failed: failed)
    if untraced > 0 {
      log("bench: stop_machine_irqoff: \(untraced) CPU traces were not of the stop just made")
    }
  }

  /// Says when a metric stopped at its time budget or left failed calls out.
  static func report(_ name: StaticString, _ budget: Budget, taken: Int, failed: Int) {
    if taken < budget.samples {
      log("bench: \(name): \(taken) of \(budget.samples) samples within its \(budget.milliseconds) ms budget")
    }
    if failed > 0 { log("bench: \(name): \(failed) of \(taken) calls failed and were left out") }
  }
}
