import Synchronization

/// The race seed 004's fix closed: stop requests aimed at a CPU while it goes down and
/// comes back. Every request must either run (once) or be refused with `.notFound`;
/// none may stay queued on a parked stopper, where its caller would wait forever.
enum HotplugRaceCase {
  /// Shared by the hammering threads and the test.
  final class Race {
    let target: CPUIndex
    let stop = Atomic<Bool>(false)
    /// Functions that ran, calls that said they ran, calls refused, other errors.
    let ran = Atomic<Int>(0)
    let reportedRun = Atomic<Int>(0)
    let refused = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    init(target: CPUIndex) { self.target = target }
    var info: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
    static func from(_ info: UnsafeMutableRawPointer?) -> Race {
      Unmanaged<Race>.fromOpaque(info!).takeUnretainedValue()
    }
  }

  private static let countRun: StopFunction = { info in
    Race.from(info).ran.wrappingAdd(1, ordering: .relaxed)
    return 0
  }

  /// One hammering thread: stopOneCPU, stopTwoCPUs (with its own CPU) and
  /// stopOneCPUNoWait on the target, in turn, until told to stop (bounded: 5 minutes).
  private static let hammer: CallFunction = { info in
    let race = Race.from(info)
    let stoppers = StopperThreads.stoppers
    let me = X86_64Platform.currentCPU
    var work = StopWork<X86_64Platform>()
    let deadline = Clock.nanoseconds() + 300_000_000_000
    var turn = 0
    while !race.stop.load(ordering: .relaxed) && Clock.nanoseconds() < deadline {
      turn += 1
      var result: StopError? = nil
      switch turn % 3 {
      case 0:
        do throws(StopError) { try stoppers.stopOneCPU(race.target, countRun, race.info) } catch { result = error }
      case 1:
        do throws(StopError) { try stoppers.stopTwoCPUs(me, race.target, countRun, race.info) } catch { result = error }
      default:
        if withUnsafeMutablePointer(to: &work, { stoppers.stopOneCPUNoWait(race.target, countRun, race.info, work: $0) }) {
          // Queued: it will run; its buffer is ours again once it has.
          let queuedAt = Clock.nanoseconds()
          while withUnsafeMutablePointer(to: &work, { $0.pointee.isBusy }) {
            if Clock.nanoseconds() - queuedAt > 10_000_000_000 {
              log("hotplug race: CPU \(me): a stopOneCPUNoWait work queued on CPU \(race.target) has not run in 10 s")
              StopRaceCase.describeStoppers()
              race.errors.wrappingAdd(1, ordering: .relaxed)
              return
            }
            Threads.scheduler.sleep(nanoseconds: 50_000)
          }
        } else {
          result = .notFound
        }
      }
      switch result {
      case nil: race.reportedRun.wrappingAdd(1, ordering: .relaxed)
      case .notFound:
        race.refused.wrappingAdd(1, ordering: .relaxed)
        // Not a busy loop: on a CPU shared with the hotplug loop (2 vCPUs) it would
        // hold the CPU whenever the target is down, and see it only down.
        Threads.scheduler.sleep(nanoseconds: 20_000)
      default: race.errors.wrappingAdd(1, ordering: .relaxed)
      }
    }
  }

  /// The last online CPU goes down and comes back in a loop while a thread on every
  /// other CPU hammers it with stop requests.
  static func stopCallsRaceHotplug() -> TestResult {
    let online = CPUs.online
    guard online.count > 1 else { return .skip("one CPU online") }
    let target = CPUIndex(online.count - 1)
    let race = Race(target: target)
    let group = ThreadGroup(capacity: online.count)
    for cpu in online where cpu != target {
      group.start(ThreadName("hp-hammer", cpu.rawValue), on: cpu, hammer, race.info)
    }
    let stoppers = StopperThreads.stoppers
    var failure: LogLine? = nil
    let start = Clock.nanoseconds()
    var cycles = 0
    // At least 20 cycles, and as many more as fit in 5 s.
    while cycles < 20 || Clock.nanoseconds() - start < 5_000_000_000 {
      if cycles >= 2000 { break }
      do throws(HotplugError) { try Hotplug.cpuDown(target) } catch {
        failure = "cpuDown(\(target)): \(line: HotplugSuite.describe(error))"
        break
      }
      guard stoppers.isParked(target), stoppers.queuedWorks(on: target) == 0 else {
        failure = "CPU \(target) went down with \(stoppers.queuedWorks(on: target)) works left on its stopper"
        break
      }
      do throws(HotplugError) { try Hotplug.cpuUp(target) } catch {
        failure = "cpuUp(\(target)): \(line: HotplugSuite.describe(error))"
        break
      }
      cycles += 1
      // Online a while, so requests also find it up (the hammers may share our CPU).
      Threads.scheduler.sleep(nanoseconds: 1_000_000)
    }
    race.stop.store(true, ordering: .relaxed)
    if let late = group.wait(milliseconds: 30_000) {
      _ = Unmanaged.passRetained(race)  // late threads still use it
      return .fail("hammering threads: \(line: late)")
    }
    if let failure { return .fail(failure) }
    let ran = race.ran.load(ordering: .relaxed)
    let reported = race.reportedRun.load(ordering: .relaxed)
    let refused = race.refused.load(ordering: .relaxed)
    KTAP.diagnostic(
      "\(cycles) down/up cycles of CPU \(target): \(reported) requests ran, \(refused) refused, \(race.errors.load(ordering: .relaxed)) other errors"
    )
    guard race.errors.load(ordering: .relaxed) == 0 else { return .fail("stop requests failed otherwise than not-found") }
    guard ran == reported else { return .fail("\(ran) functions ran but \(reported) requests said they ran") }
    guard refused > 0 && reported > 0 else {
      return .fail("the race was not exercised: \(reported) ran, \(refused) refused")
    }
    return .pass
  }
}
