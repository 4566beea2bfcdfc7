import Synchronization

/// The `sendstop` scenarios where a stop begins while an AP is being started: at boot
/// (`boot_<point>`, the boot CPU stops from inside its bring-up) and by `cpu_up`
/// (`up_<point>`, after taking the last CPU down; the stop comes from CPU 1 while CPU 0
/// starts the AP, or from CPU 0 itself on a 2-CPU machine). The points:
/// - `before_init`: the AP is claimed for the start, no INIT sent yet;
/// - `wait_sipi`: INIT sent, no STARTUP yet: the AP waits for SIPI;
/// - `trampoline`: the AP has run the trampoline and holds at its first Swift
///   instruction, before it has its per-CPU block, until the stop has claimed it;
/// - `before_online`: the AP has looked for a stop, found none, and holds just before
///   it marks itself online, until the stop has claimed it.
/// Whatever the point, the AP must end stopped or parked, never online, and the stop
/// must not report it as failed. The choreography runs in `APStartup.testOnlyHook`.
enum SendStopBringUp {
  struct PointEntry {
    let name: StaticString
    let point: APStartup.BringUpPoint
  }

  static var bootPoints: [PointEntry] {
    [
      PointEntry(name: "boot_before_init", point: .beforeINIT),
      PointEntry(name: "boot_wait_sipi", point: .waitingForSIPI),
      PointEntry(name: "boot_trampoline", point: .trampoline),
      PointEntry(name: "boot_before_online", point: .beforeOnline),
    ]
  }

  static var hotplugEntries: [SendStopScenarios.Entry] {
    [
      SendStopScenarios.Entry(name: "up_before_init", run: { duringCPUUp(.beforeINIT) }),
      SendStopScenarios.Entry(name: "up_wait_sipi", run: { duringCPUUp(.waitingForSIPI) }),
      SendStopScenarios.Entry(name: "up_trampoline", run: { duringCPUUp(.trampoline) }),
      SendStopScenarios.Entry(name: "up_before_online", run: { duringCPUUp(.beforeOnline) }),
    ]
  }

  // MARK: The choreography's state (static storage: read by APs before their set-up)

  nonisolated(unsafe) private static var chosenPoint: Int32 = 0
  nonisolated(unsafe) private static var chosenCPU = -1
  nonisolated(unsafe) private static var chosenAPIC = -1
  /// The CPU that makes the stop.
  nonisolated(unsafe) private static var stopper = 0
  /// Set by the AP once it holds at its point.
  private static let held = Atomic<Bool>(false)
  /// Starts the stop on a stopper that is not the starting CPU.
  private static let trigger = Atomic<Bool>(false)

  /// For a `boot_*` scenario, before bring-up: chooses the last CPU and installs the
  /// hook. Boot CPU, interrupts off.
  static func prepare(_ parameters: BootParameters) {
    let scenario = parameters.list("sendstop").first ?? []
    guard parameters.list("ktest").contains(where: { BootParameters.equals($0, "sendstop") }) else { return }
    for entry in bootPoints where BootParameters.equals(scenario, entry.name) {
      guard CPUs.possibleCount >= 2 else { return }
      choose(entry.point, cpu: CPUIndex(CPUs.possibleCount - 1), stopper: .boot)
    }
  }

  private static func choose(_ point: APStartup.BringUpPoint, cpu: CPUIndex, stopper: CPUIndex) {
    chosenPoint = point.rawValue
    chosenCPU = cpu.rawValue
    chosenAPIC = Int(CPUs.apicID(of: cpu).rawValue)
    Self.stopper = stopper.rawValue
    APStartup.testOnlyHook = hook
  }

  /// `up_<point>`: takes the last CPU down, then starts it with the stop arranged at
  /// `point`. Returns only if `cpu_up` came back, which it must not.
  private static func duringCPUUp(_ point: APStartup.BringUpPoint) -> TestResult {
    let target = SendStopScenarios.victim
    guard target != .boot else { return .skip("no AP to start") }
    // A third CPU makes the stop, so that the starting CPU is itself stopped mid-start;
    // on two CPUs the starting CPU stops from inside its start.
    let stopperCPU = CPUs.online.count >= 3 && target.rawValue != 1 ? CPUIndex(1) : CPUIndex.boot
    do throws(HotplugError) { try Hotplug.cpuDown(target) } catch {
      return .fail("cpu_down(\(target)) failed")
    }
    choose(point, cpu: target, stopper: stopperCPU)
    if stopperCPU != .boot {
      do throws(CrossCallError) {
        try X86_64Platform.calls.callSingle(on: stopperCPU, stopWhenTriggered, wait: false)
      } catch { return .fail("could not reach CPU \(stopperCPU)") }
    }
    KTAP.diagnostic("cpu_up(\(target)) with a stop from CPU \(stopperCPU) at point \(Int(point.rawValue))")
    do throws(HotplugError) { try Hotplug.cpuUp(target) } catch {
      return .fail("cpu_up(\(target)) failed instead of being stopped")
    }
    return .fail("cpu_up(\(target)) returned: the stop never came")
  }

  /// The stopper on another CPU: a cross-call handler (interrupts off) that waits for
  /// the trigger, at most 10 s, then stops.
  private static let stopWhenTriggered: CallFunction = { _ in
    let start = Clock.nanoseconds()
    // Acquire pairs with the release in `triggerOrStop`.
    while !trigger.load(ordering: .acquiring) {
      if Clock.nanoseconds() &- start > 10_000_000_000 {
        SendStopSuite.finish(.fail("CPU \(PerCPU.currentCPU) waited 10 s for the start to reach its point"))
      }
      CPUInstructions.pause()
    }
    stopAndFinish()
  }

  /// `APStartup.testOnlyHook`.
  private static let hook: @convention(c) (Int32, Int) -> Void = { point, argument in
    guard let point = APStartup.BringUpPoint(rawValue: point) else { return }
    switch point {
    case .beforeINIT, .waitingForSIPI:
      if point.rawValue == chosenPoint && argument == chosenCPU { starterReached() }
    case .trampoline:
      if point.rawValue == chosenPoint && argument == chosenAPIC { apHolds() }
    case .beforeOnline:
      if point.rawValue == chosenPoint && argument == chosenCPU { apHolds() }
    case .waiting:
      // Acquire pairs with the AP's release in `apHolds`.
      if held.load(ordering: .acquiring) && stopper == PerCPU.currentCPU.rawValue { stopAndFinish() }
    }
  }

  /// The starting CPU at `before_init` or `wait_sipi`: stops from here, or has the
  /// stopper stop and waits (at most 2 s) until the stop has claimed the AP, then goes
  /// on with its start, to be stopped itself.
  private static func starterReached() {
    if stopper == PerCPU.currentCPU.rawValue { stopAndFinish() }
    trigger.store(true, ordering: .releasing)
    _ = waitUntilClaimed()
  }

  /// The AP at `trampoline` or `before_online`: says so (and triggers a stopper on a
  /// third CPU), then holds until the stop has claimed it (at most 2 s), and goes on.
  private static func apHolds() {
    held.store(true, ordering: .releasing)
    if stopper != CPUIndex.boot.rawValue { trigger.store(true, ordering: .releasing) }
    _ = waitUntilClaimed()
  }

  private static func waitUntilClaimed() -> Bool {
    let start = Clock.nanoseconds()
    while CPUs.state(of: CPUIndex(chosenCPU)) != .stopped {
      if Clock.nanoseconds() &- start > 2_000_000_000 { return false }
      CPUInstructions.pause()
    }
    return true
  }

  /// The stopper: stops, checks that the AP was claimed while starting and ended
  /// parked (if a STARTUP reached it) or never started, and ends the machine.
  private static func stopAndFinish() -> Never {
    let ap = CPUIndex(chosenCPU)
    let reachedByStartup = chosenPoint == APStartup.BringUpPoint.trampoline.rawValue
      || chosenPoint == APStartup.BringUpPoint.beforeOnline.rawValue
    let outcome = SMPStop.stopOtherCPUs()
    let result = SendStopSuite.check(
      outcome,
      SendStopSuite.Expectation(cpu: ap, itsMechanism: reachedByStartup ? .parkedWhileStarting : .none))
    guard case .pass = result else { SendStopSuite.finish(result) }
    guard let outcome, outcome.starting.contains(ap) else {
      SendStopSuite.finish(.fail("CPU \(ap) was not claimed as a starting CPU"))
    }
    guard CPUs.state(of: ap) == .stopped else {
      SendStopSuite.finish(.fail("CPU \(ap) ended in state \(Int(CPUs.state(of: ap).rawValue)), not stopped"))
    }
    if stopper != CPUIndex.boot.rawValue && SMPStop.shared!.acknowledgement(of: .boot).mechanism == .none {
      SendStopSuite.finish(.fail("the starting CPU 0 was not stopped"))
    }
    SendStopSuite.finish(.pass)
  }
}
