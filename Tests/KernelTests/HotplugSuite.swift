import Synchronization

/// `ktest=hotplug`: CPUs taken offline through `stop_machine` and started again with
/// INIT-SIPI-SIPI: each one alone, the errors, 100 rounds in random order with
/// cross-calls and `stop_machine` running throughout, and the stop calls that race with
/// a CPU going down (each either runs or is refused, none is lost).
enum HotplugSuite {
  static let suite = KernelTestSuite(
    name: "hotplug",
    cases: [
      KernelTestCase(name: "each_cpu_down_and_up", run: eachCPUDownAndUp),
      KernelTestCase(name: "clear_errors", run: clearErrors),
      KernelTestCase(name: "random_rounds_under_load", run: randomRoundsUnderLoad),
      KernelTestCase(name: "stop_calls_race_hotplug", run: HotplugRaceCase.stopCallsRaceHotplug),
    ])

  static var stoppers: Stoppers<X86_64Platform> { StopperThreads.stoppers }

  /// Rounds of `random_rounds_under_load`.
  static let rounds = 100

  private static let recordCPU: StopFunction = { info in
    info!.assumingMemoryBound(to: Int.self).pointee = X86_64Platform.currentCPU.rawValue
    return 0
  }

  /// Checks `cpu` is offline in every view: lifecycle, online and active sets, its
  /// stopper (parked, empty, refusing work).
  static func checkOffline(_ cpu: CPUIndex) -> LogLine? {
    guard CPUs.state(of: cpu) == .dead else { return "CPU \(cpu) is not dead after cpuDown" }
    guard !CPUs.online.contains(cpu), !CPUs.active.contains(cpu) else {
      return "CPU \(cpu) is still in the online or active set after cpuDown"
    }
    guard stoppers.isParked(cpu), !stoppers.isEnabled(cpu), stoppers.queuedWorks(on: cpu) == 0 else {
      return "CPU \(cpu)'s stopper is not parked and empty after cpuDown"
    }
    var ranOn = -1
    do throws(StopError) {
      try stoppers.stopOneCPU(cpu, recordCPU, &ranOn)
      return "stopOneCPU on offline CPU \(cpu) ran (on CPU \(ranOn))"
    } catch {
      guard error == .notFound, ranOn == -1 else { return "stopOneCPU on offline CPU \(cpu): wrong error" }
    }
    return nil
  }

  /// Checks `cpu` is online in every view and that a stop and a cross-call run on it
  /// straight away.
  static func checkOnline(_ cpu: CPUIndex) -> LogLine? {
    guard CPUs.state(of: cpu) == .online, CPUs.online.contains(cpu), CPUs.active.contains(cpu) else {
      return "CPU \(cpu) is not online and active after cpuUp"
    }
    var ranOn = -1
    do throws(StopError) {
      try stoppers.stopOneCPU(cpu, recordCPU, &ranOn)
    } catch {
      return "stopOneCPU on CPU \(cpu) straight after cpuUp failed"
    }
    guard ranOn == cpu.rawValue else { return "stopOneCPU for CPU \(cpu) ran on CPU \(ranOn)" }
    let counters = CPUCounters()
    guard (try? X86_64Platform.calls.callSingle(on: cpu, countOnThisCPU, counters.info, wait: true)) != nil,
      counters.value(cpu) == 1
    else { return "a cross-call to CPU \(cpu) after cpuUp did not run there" }
    return nil
  }

  /// Every CPU but the boot CPU, alone: down (checked offline everywhere), up (checked
  /// online, a stop and a cross-call run there at once).
  static func eachCPUDownAndUp() -> TestResult {
    guard CPUs.online.count > 1 else { return .skip("one CPU online") }
    var downTotal: UInt64 = 0
    var upTotal: UInt64 = 0
    for cpu in CPUs.online where cpu != .boot {
      let start = Clock.nanoseconds()
      do throws(HotplugError) { try Hotplug.cpuDown(cpu) } catch { return .fail("cpuDown(\(cpu)): \(line: describe(error))") }
      let down = Clock.nanoseconds()
      if let problem = checkOffline(cpu) { return .fail(problem) }
      let beforeUp = Clock.nanoseconds()
      do throws(HotplugError) { try Hotplug.cpuUp(cpu) } catch { return .fail("cpuUp(\(cpu)): \(line: describe(error))") }
      let up = Clock.nanoseconds()
      if let problem = checkOnline(cpu) { return .fail(problem) }
      downTotal += down - start
      upTotal += up - beforeUp
    }
    let count = UInt64(CPUs.online.count - 1)
    KTAP.diagnostic("\(count) CPUs: cpuDown took \(downTotal / count / 1000) us, cpuUp \(upTotal / count / 1000) us on average")
    return .pass
  }

  /// Each refusal with its own error: an invalid CPU, the boot CPU (its `main` thread),
  /// an offline CPU down again, an online CPU up again, the last online CPU.
  static func clearErrors() -> TestResult {
    let invalid = CPUIndex(CPUs.possibleCount)
    guard expect({ () throws(HotplugError) in try Hotplug.cpuDown(invalid) }, .invalidCPU(invalid)),
      expect({ () throws(HotplugError) in try Hotplug.cpuUp(CPUIndex(-3)) }, .invalidCPU(CPUIndex(-3))),
      expect({ () throws(HotplugError) in try Hotplug.cpuUp(.boot) }, .notOffline(.boot, .online))
    else { return .fail("a bad CPU number or an online CPU was not refused with its error") }
    let online = CPUs.online
    if online.count == 1 {
      guard expect({ () throws(HotplugError) in try Hotplug.cpuDown(.boot) }, .lastOnlineCPU(.boot)) else {
        return .fail("cpuDown of the only online CPU was not refused as the last online CPU")
      }
      return .pass
    }
    guard expect({ () throws(HotplugError) in try Hotplug.cpuDown(.boot) }, .hasThreads(.boot, 1)) else {
      return .fail("cpuDown of the boot CPU (running main) was not refused for its thread")
    }
    let last = CPUIndex(online.count - 1)
    do throws(HotplugError) { try Hotplug.cpuDown(last) } catch { return .fail("cpuDown(\(last)) failed") }
    let again = expect({ () throws(HotplugError) in try Hotplug.cpuDown(last) }, .notOnline(last, .dead))
    // Every CPU but the boot CPU down: then the boot CPU is the last online one.
    var taken: [CPUIndex] = []
    for cpu in CPUs.online where cpu != .boot {
      guard (try? Hotplug.cpuDown(cpu)) != nil else { return .fail("cpuDown(\(cpu)) failed") }
      taken.append(cpu)
    }
    let lastOne = expect({ () throws(HotplugError) in try Hotplug.cpuDown(.boot) }, .lastOnlineCPU(.boot))
    for cpu in taken + [last] {
      guard (try? Hotplug.cpuUp(cpu)) != nil else { return .fail("cpuUp(\(cpu)) failed") }
    }
    guard again else { return .fail("cpuDown of an offline CPU was not refused as not online") }
    guard lastOne else { return .fail("cpuDown of the last online CPU was not refused as the last") }
    guard CPUs.online == online else { return .fail("not every CPU came back online") }
    return .pass
  }

  private static func expect(_ body: () throws(HotplugError) -> Void, _ wanted: HotplugError) -> Bool {
    do throws(HotplugError) {
      try body()
      return false
    } catch {
      if error != wanted { log("hotplug: got \(line: describe(error)), wanted \(line: describe(wanted))") }
      return error == wanted
    }
  }

  static func describe(_ error: HotplugError) -> LogLine {
    switch error {
    case .invalidCPU(let cpu): "CPU \(cpu) does not exist"
    case .notOnline(let cpu, let state): "CPU \(cpu) is not online (state \(Int(state.rawValue)))"
    case .notOffline(let cpu, let state): "CPU \(cpu) is not offline (state \(Int(state.rawValue)))"
    case .lastOnlineCPU(let cpu): "CPU \(cpu) is the last online CPU"
    case .hasThreads(let cpu, let count): "CPU \(cpu) has \(count) thread(s) of its own"
    case .didNotDie(let cpu, let ms): "CPU \(cpu) did not report dead within \(ms) ms"
    case .didNotComeOnline(let cpu): "CPU \(cpu) did not come online"
    }
  }

  /// Shared by the load threads and the test.
  final class Load {
    let stop = Atomic<Bool>(false)
    let calls = Atomic<Int>(0)
    let stops = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    var info: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
    static func from(_ info: UnsafeMutableRawPointer?) -> Load {
      Unmanaged<Load>.fromOpaque(info!).takeUnretainedValue()
    }
  }

  private static let noStop: StopFunction = { _ in 0 }

  /// A load thread on the boot CPU: cross-calls to every online CPU, waiting.
  private static let callLoad: CallFunction = { info in
    let load = Load.from(info)
    let deadline = Clock.nanoseconds() + 300_000_000_000
    while !load.stop.load(ordering: .relaxed) && Clock.nanoseconds() < deadline {
      X86_64Platform.calls.onEachCPU(countNothing, nil, wait: true)
      load.calls.wrappingAdd(1, ordering: .relaxed)
      Threads.scheduler.sleep(nanoseconds: 200_000)
    }
  }

  /// A load thread on the boot CPU: stop_machine over every online CPU.
  private static let stopLoad: CallFunction = { info in
    let load = Load.from(info)
    let deadline = Clock.nanoseconds() + 300_000_000_000
    while !load.stop.load(ordering: .relaxed) && Clock.nanoseconds() < deadline {
      do throws(StopError) { try stoppers.stopMachine(noStop, cpus: nil) } catch { load.errors.wrappingAdd(1, ordering: .relaxed) }
      load.stops.wrappingAdd(1, ordering: .relaxed)
      Threads.scheduler.sleep(nanoseconds: 500_000)
    }
  }

  private static let countNothing: CallFunction = { _ in }

  /// `rounds` rounds: every CPU but the boot CPU goes down, in random order, then
  /// comes back, in another random order; two threads on the boot CPU make cross-calls
  /// and `stop_machine` calls throughout. Each round ends with every CPU online,
  /// running a stop and a cross-call.
  static func randomRoundsUnderLoad() -> TestResult {
    let all = CPUs.online
    guard all.count > 1 else { return .skip("one CPU online") }
    var random = TestRandom(seed: CPUInstructions.readTSC())
    KTAP.diagnostic("seed \(random.seed)")
    let load = Load()
    let group = ThreadGroup(capacity: 2)
    group.start(ThreadName("hp-calls"), on: .boot, callLoad, load.info)
    group.start(ThreadName("hp-stops"), on: .boot, stopLoad, load.info)
    var failure: LogLine? = nil
    let start = Clock.nanoseconds()
    var operations = 0
    rounds: for _ in 0..<rounds {
      var others = all.filter { $0 != .boot }
      random.shuffle(&others)
      for cpu in others {
        do throws(HotplugError) { try Hotplug.cpuDown(cpu) } catch {
          failure = "cpuDown(\(cpu)): \(line: describe(error))"
          break rounds
        }
        if let problem = checkOffline(cpu) {
          failure = problem
          break rounds
        }
        operations += 1
      }
      random.shuffle(&others)
      for cpu in others {
        do throws(HotplugError) { try Hotplug.cpuUp(cpu) } catch {
          failure = "cpuUp(\(cpu)): \(line: describe(error))"
          break rounds
        }
        operations += 1
      }
      for cpu in others {
        if let problem = checkOnline(cpu) {
          failure = problem
          break rounds
        }
      }
    }
    load.stop.store(true, ordering: .relaxed)
    if let late = group.wait(milliseconds: 30_000) { return .fail("load threads: \(line: late)") }
    if let failure { return .fail(failure) }
    guard load.errors.load(ordering: .relaxed) == 0 else { return .fail("stop_machine failed during hotplug") }
    guard CPUs.online == all else { return .fail("not every CPU is back online") }
    KTAP.diagnostic(
      "\(operations) hotplug operations in \((Clock.nanoseconds() - start) / 1_000_000) ms with \(load.calls.load(ordering: .relaxed)) on_each_cpu and \(load.stops.load(ordering: .relaxed)) stop_machine calls meanwhile"
    )
    return .pass
  }
}

/// A small xorshift generator for tests that log their seed.
struct TestRandom {
  let seed: UInt64
  private var state: UInt64

  init(seed: UInt64) {
    self.seed = seed
    state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed
  }

  mutating func next() -> UInt64 {
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    return state
  }

  /// A number in 0..<bound.
  mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }

  mutating func shuffle(_ items: inout [CPUIndex]) {
    guard items.count > 1 else { return }
    for index in stride(from: items.count - 1, to: 0, by: -1) {
      items.swapAt(index, below(index + 1))
    }
  }
}
