import Synchronization

/// The operations of the stop torture: each stop API, a cross-call, and CPU hotplug.
enum StopTortureKind: Int, CaseIterable {
  case stopOne, stopOneNoWait, stopTwo, stopCPUs, tryStopCPUs, stopMachine, stopMachineLocked
  case crossCall, cpuDown, cpuUp

  /// The name in the summary (Linux's, where there is one).
  var name: StaticString {
    switch self {
    case .stopOne: "stop_one_cpu"
    case .stopOneNoWait: "stop_one_cpu_nowait"
    case .stopTwo: "stop_two_cpus"
    case .stopCPUs: "stop_cpus"
    case .tryStopCPUs: "try_stop_cpus"
    case .stopMachine: "stop_machine"
    case .stopMachineLocked: "stop_machine_cpuslocked"
    case .crossCall: "smp_call_function_single"
    case .cpuDown: "cpu_down"
    case .cpuUp: "cpu_up"
    }
  }
}

/// How one operation ended. Every case but `error` is an outcome the API documents for
/// the arguments and the moment; which of them a given kind may give is the
/// operation's to judge (StopTortureOperation).
enum StopTortureOutcome: Int, CaseIterable {
  /// It ran where and as often as it had to, and the call said so.
  case ran
  /// It ran, its function returned the code it was asked to, and the call reported it.
  case ranWithCode
  /// `.notFound`: the CPU (or every CPU asked) was offline; nothing ran.
  case notFound
  /// `.again` from `tryStopCPUs`: another stop held the mutex; nothing ran.
  case again
  /// `.invalidCPU`: a CPU number out of range, or `stopTwoCPUs` given one CPU twice.
  case invalidCPU
  /// A cross-call's `.offline`.
  case offline
  /// `cpuDown` refused: the CPU has threads of its own (an operation's thread, say).
  case hasThreads
  /// `cpuDown` of a CPU already offline.
  case notOnline
  /// `cpuUp` of a CPU already online.
  case notOffline
  /// `cpuDown` of the last online CPU (never here: CPU 0 stays online).
  case lastOnlineCPU
  /// Anything else, or a result that disagrees with where the function ran.
  case error

  var name: StaticString {
    switch self {
    case .ran: "ran"
    case .ranWithCode: "ran returning its code"
    case .notFound: "not found"
    case .again: "again"
    case .invalidCPU: "invalid CPU"
    case .offline: "offline"
    case .hasThreads: "has threads"
    case .notOnline: "not online"
    case .notOffline: "not offline"
    case .lastOnlineCPU: "last online CPU"
    case .error: "errors"
    }
  }
}

/// What every operation of one torture shares: outcomes per kind, the functions' runs,
/// and the hotplug window. Counters are relaxed; each operation's end (a release its
/// driver acquires) orders them before the summary.
final class StopTortureTally {
  let seed: UInt64
  private let counts: UnsafeMutablePointer<Atomic<Int>>
  private static let slots = StopTortureKind.allCases.count * StopTortureOutcome.allCases.count
  /// Runs the functions counted, and runs the callers' results accounted for.
  let functionsRan = Atomic<Int>(0)
  let runsAccounted = Atomic<Int>(0)
  /// Operations whose result was checked against an online set that could not change
  /// under them (no hotplug operation in flight from before to after).
  let exactChecks = Atomic<Int>(0)
  let errors = Atomic<Int>(0)
  /// Hotplug operations begun and ended: an operation that reads `ended` then `begun`
  /// equal, and `begun` unchanged after its call, ran with the online set fixed.
  let hotplugBegun = Atomic<Int>(0)
  let hotplugEnded = Atomic<Int>(0)

  init(seed: UInt64) {
    self.seed = seed
    counts = .allocate(capacity: Self.slots)
    for slot in 0..<Self.slots { (counts + slot).initialize(to: Atomic<Int>(0)) }
  }

  deinit {
    counts.deinitialize(count: Self.slots)
    counts.deallocate()
  }

  func count(_ kind: StopTortureKind, _ outcome: StopTortureOutcome) {
    counts[kind.rawValue * StopTortureOutcome.allCases.count + outcome.rawValue].wrappingAdd(
      1, ordering: .relaxed)
  }

  func value(_ kind: StopTortureKind, _ outcome: StopTortureOutcome) -> Int {
    counts[kind.rawValue * StopTortureOutcome.allCases.count + outcome.rawValue].load(ordering: .relaxed)
  }

  /// Counts an error and says what it was (the first ten, to keep the log readable).
  func fail(_ line: LogLine) {
    if errors.wrappingAdd(1, ordering: .relaxed).newValue <= 10 {
      KTAP.diagnostic("stop torture: \(line: line)")
    }
  }

  /// The hotplug window at the start of an operation: `begun` if none was in flight.
  func windowStart() -> Int? {
    // Ended first: if begun then equals it, none was in flight when begun was read.
    let ended = hotplugEnded.load(ordering: .sequentiallyConsistent)
    let begun = hotplugBegun.load(ordering: .sequentiallyConsistent)
    return begun == ended ? begun : nil
  }

  /// Whether no hotplug operation ran between `windowStart` (which gave `start`) and now.
  func windowHeld(since start: Int?) -> Bool {
    guard let start else { return false }
    return hotplugBegun.load(ordering: .sequentiallyConsistent) == start
  }

  /// One diagnostic line per kind with its non-zero outcomes.
  func printSummary() {
    for kind in StopTortureKind.allCases {
      var line: LogLine = "  "
      line.append(kind.name)
      line.append(":")
      var any = false
      for outcome in StopTortureOutcome.allCases {
        let value = value(kind, outcome)
        guard value > 0 || outcome == .error else { continue }
        line.append(any ? ", " : " ")
        line.append(decimal: value)
        line.append(" ")
        line.append(outcome.name)
        any = true
      }
      KTAP.diagnostic(line)
    }
  }
}
