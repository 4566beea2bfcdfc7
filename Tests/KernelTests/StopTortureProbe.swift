import Synchronization

/// What one torture operation's function writes as it runs: once per CPU it ran on,
/// and whether it ran in the context it must. Allocated by the operation, freed once
/// nothing can run the function any more.
struct StopTortureProbe: ~Copyable {
  /// Where the function runs, which decides what it checks there.
  enum Context {
    /// A stopper thread's work (`stopOneCPU`, `stopCPUs`): the stopper class,
    /// preemption off.
    case stopper
    /// A CPU's part of a multi-CPU stop (`stopTwoCPUs`): the stopper, interrupts off.
    case multiStop
    /// The same in `stopMachine`, which also counts the CPUs that must run it.
    case machine
    /// A cross-call handler: interrupts off.
    case crossCall
  }

  /// Runs per possible CPU (release by the function, acquire by the operation).
  let runs: UnsafeMutablePointer<Atomic<Int>>
  let cpuCount: Int
  let context: Context
  /// What the stop function returns: 0, or a code the call must report as `.failed`.
  let code: Int32
  /// `stopMachine`'s `cpus`, for the count below; unused by the other kinds.
  let machineCPUs: CPUSet?
  /// For `stopMachine`: how many CPUs must run the function, counted by each CPU that
  /// runs it (the online set cannot change inside the stop); -1 if none ran it.
  let machineRunners = Atomic<Int>(-1)
  /// Runs outside the context above.
  let contextErrors = Atomic<Int>(0)

  /// A probe for a function that runs in `context` and returns `code`.
  static func make(context: Context, code: Int32, machineCPUs: CPUSet? = nil) -> UnsafeMutablePointer<Self> {
    let count = CPUs.possibleCount
    let runs = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: count)
    for cpu in 0..<count { (runs + cpu).initialize(to: Atomic<Int>(0)) }
    let probe = UnsafeMutablePointer<Self>.allocate(capacity: 1)
    probe.initialize(
      to: StopTortureProbe(
        runs: runs, cpuCount: count, context: context, code: code, machineCPUs: machineCPUs))
    return probe
  }

  /// Frees `probe` and its counters.
  static func free(_ probe: UnsafeMutablePointer<Self>) {
    probe.pointee.runs.deinitialize(count: probe.pointee.cpuCount)
    probe.pointee.runs.deallocate()
    probe.deinitialize(count: 1)
    probe.deallocate()
  }

  /// The CPUs the function ran on.
  var ranOn: CPUSet {
    var set = CPUSet()
    // Acquire pairs with the release in `record`: the run is complete.
    for cpu in 0..<cpuCount where runs[cpu].load(ordering: .acquiring) > 0 { set.insert(CPUIndex(cpu)) }
    return set
  }

  /// A CPU the function ran on more than once, if any.
  var ranTwiceOn: CPUIndex? {
    (0..<cpuCount).first { runs[$0].load(ordering: .acquiring) > 1 }.map { CPUIndex($0) }
  }

  /// Runs on all CPUs.
  var totalRuns: Int { (0..<cpuCount).reduce(0) { $0 + runs[$1].load(ordering: .acquiring) } }

  /// The function of every stop kind: checks its context, counts the run, returns the
  /// probe's code. Runs in a stopper, preemption off (interrupts off in a multi-CPU
  /// stop): no allocation, no lock but the seqcount read of the online set.
  static let stopFunction: StopFunction = { info in
    let probe = info!.assumingMemoryBound(to: StopTortureProbe.self)
    let scheduler = Threads.scheduler
    let inStopper = scheduler.current.pointee.priority == .stopper && scheduler.preemptCount > 0
    let multi = probe.pointee.context == .multiStop || probe.pointee.context == .machine
    if !inStopper || (multi && CPUInstructions.interruptsEnabled) {
      probe.pointee.contextErrors.wrappingAdd(1, ordering: .relaxed)
    }
    if probe.pointee.context == .machine {
      // Inside stop_machine the hotplug lock is held and every CPU is stopped: the
      // online set read here is the one the stop was built from.
      let runners = probe.pointee.machineCPUs.map { $0.intersection(CPUs.online).count } ?? 1
      probe.pointee.machineRunners.store(runners, ordering: .relaxed)
    }
    record(probe)
    return probe.pointee.code
  }

  /// The cross-call's function: interrupts must be off (handler, or run locally).
  static let callFunction: CallFunction = { info in
    let probe = info!.assumingMemoryBound(to: StopTortureProbe.self)
    if CPUInstructions.interruptsEnabled { probe.pointee.contextErrors.wrappingAdd(1, ordering: .relaxed) }
    record(probe)
  }

  private static func record(_ probe: UnsafeMutablePointer<StopTortureProbe>) {
    // Release pairs with the acquires above: what the function did is visible with it.
    probe.pointee.runs[X86_64Platform.currentCPU.rawValue].wrappingAdd(1, ordering: .releasing)
  }
}
