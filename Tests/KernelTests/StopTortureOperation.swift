import Synchronization

/// One operation of the stop torture: a short-lived thread (`stop-torture/N`) on an
/// online CPU that makes one call, chosen with its arguments when the driver creates
/// it, and judges the result against where its function ran.
final class StopTortureOperation {
  let number: Int
  let kind: StopTortureKind
  /// The CPU its thread is bound to.
  let cpu: CPUIndex
  /// The target: of `stopOneCPU`, the no-wait stop, the cross-call, hotplug; the first
  /// CPU of `stopTwoCPUs` (the one that runs the function).
  let first: CPUIndex
  /// The second CPU of `stopTwoCPUs`.
  let second: CPUIndex
  /// The CPUs of `stopCPUs` and `tryStopCPUs`, and of `stopMachine` (nil: its default,
  /// the first online CPU).
  let cpus: CPUSet?
  /// What the stop function returns: 0, or a code the call must report as `.failed`.
  let code: Int32
  /// When the driver created it (`Clock.nanoseconds`), for the report of a stuck one.
  let createdAt: UInt64
  /// Set (release) once it has judged its result; pairs with the driver's acquire.
  let ended = Atomic<Bool>(false)
  unowned(unsafe) let tally: StopTortureTally
  /// Completed once at the end, for the driver.
  let endSignal: Completion<X86_64Platform>
  /// Its thread, set by the driver before it starts it and read by the driver only,
  /// while the operation has not ended (so the thread has not ended either).
  var thread: UnsafeMutablePointer<KernelThread>? = nil

  static var stoppers: Stoppers<X86_64Platform> { StopperThreads.stoppers }

  /// A random operation for a thread on `cpu`. Called by the driver with the hotplug
  /// lock held, so `online` is current.
  init(
    number: Int, on cpu: CPUIndex, online: CPUSet, random: inout TestRandom, tally: StopTortureTally,
    endSignal: Completion<X86_64Platform>
  ) {
    self.number = number
    self.cpu = cpu
    self.tally = tally
    self.endSignal = endSignal
    createdAt = Clock.nanoseconds()
    let kind = StopTortureKind(rawValue: random.below(StopTortureKind.allCases.count))!
    self.kind = kind
    let possible = CPUs.possibleCount
    first = Self.firstTarget(kind, from: cpu, online: online, &random)
    // The pair: the same CPU twice an eighth of the time (`.invalidCPU`), else two.
    if kind != .stopTwo || random.below(8) == 0 || !(0..<possible).contains(first.rawValue) {
      second = first
    } else {
      let other = Self.target(from: cpu, &random)
      second = other != first ? other : CPUIndex((first.rawValue + 1 + random.below(possible - 1)) % possible)
    }
    switch kind {
    case .stopCPUs, .tryStopCPUs: cpus = Self.randomSet(&random, possible)
    case .stopMachine, .stopMachineLocked:
      cpus = random.below(3) == 0 ? nil : Self.randomSet(&random, possible)
    default: cpus = nil
    }
    // An eighth of the waiting stops have their function fail, to see the code come back.
    let waits = kind != .stopOneNoWait && kind != .crossCall && kind != .cpuDown && kind != .cpuUp
    code = waits && random.below(8) == 0 ? Int32(100 + kind.rawValue) : 0
  }

  /// The target of `kind` from a thread on `cpu`: any CPU but 0 to take down, an
  /// offline CPU to bring up (any but 0 when none is), else `target(from:)`.
  private static func firstTarget(
    _ kind: StopTortureKind, from cpu: CPUIndex, online: CPUSet, _ random: inout TestRandom
  ) -> CPUIndex {
    let possible = CPUs.possibleCount
    switch kind {
    case .cpuDown:
      return CPUIndex(1 + random.below(possible - 1))
    case .cpuUp:
      let offline = (1..<possible).map { CPUIndex($0) }.filter { !online.contains($0) }
      return offline.isEmpty ? CPUIndex(1 + random.below(possible - 1)) : offline[random.below(offline.count)]
    default:
      return target(from: cpu, &random)
    }
  }

  /// A target CPU: the caller's own a quarter of the time, now and then a number out
  /// of range, else any possible CPU (online or not).
  private static func target(from cpu: CPUIndex, _ random: inout TestRandom) -> CPUIndex {
    if random.below(4) == 0 { return cpu }
    if random.below(64) == 0 { return CPUIndex(CPUs.possibleCount) }
    return CPUIndex(random.below(CPUs.possibleCount))
  }

  /// Empty an eighth of the time, every CPU an eighth, else each CPU with even odds.
  private static func randomSet(_ random: inout TestRandom, _ possible: Int) -> CPUSet {
    switch random.below(8) {
    case 0: return CPUSet()
    case 1: return CPUSet.first(possible)
    default:
      var set = CPUSet()
      for cpu in 0..<possible where random.below(2) == 0 { set.insert(CPUIndex(cpu)) }
      return set
    }
  }

  /// The thread's function; its argument is the operation, retained by the driver.
  static let entry: CallFunction = { info in
    let operation = Unmanaged<StopTortureOperation>.fromOpaque(info!).takeRetainedValue()
    operation.perform()
    // Release pairs with the driver's acquire in `isEnded`: the counts are visible.
    operation.ended.store(true, ordering: .releasing)
    operation.endSignal.complete(in: Threads.scheduler)
  }

  var isEnded: Bool { ended.load(ordering: .acquiring) }

  /// Makes the call and counts its outcome.
  private func perform() {
    let window = tally.windowStart()
    let online = CPUs.online
    let outcome: StopTortureOutcome
    switch kind {
    case .stopOne: outcome = stopOne(online, window)
    case .stopOneNoWait: outcome = stopOneNoWait(online, window)
    case .stopTwo: outcome = stopTwo(online, window)
    case .stopCPUs, .tryStopCPUs: outcome = stopCPUs(online, window)
    case .stopMachine: outcome = stopMachine(window)
    case .stopMachineLocked: outcome = stopMachineLocked()
    case .crossCall: outcome = crossCall(online, window)
    case .cpuDown, .cpuUp: outcome = hotplug()
    }
    tally.count(kind, outcome)
  }

  /// A line naming the operation: `#12 stop_two_cpus(3, 5) from CPU 2`.
  var title: LogLine {
    var line: LogLine = "#\(number) "
    line.append(kind.name)
    line.append("(")
    switch kind {
    case .stopCPUs, .tryStopCPUs, .stopMachine, .stopMachineLocked:
      if let cpus {
        line.append("{")
        line.append(cpuList: cpus.map { $0.rawValue })
        line.append("}")
      } else {
        line.append("nil")
      }
    case .stopTwo: line = "\(line: line)\(first), \(second)"
    default: line = "\(line: line)\(first)"
    }
    if code != 0 { line = "\(line: line), returning \(Int(code))" }
    return "\(line: line)) from CPU \(cpu)"
  }

  /// Counts an error about this operation and returns `.error`.
  func error(_ what: LogLine) -> StopTortureOutcome {
    tally.fail("\(line: title): \(line: what)")
    return .error
  }

  func isValid(_ cpu: CPUIndex) -> Bool { cpu.rawValue >= 0 && cpu.rawValue < CPUs.possibleCount }
}
