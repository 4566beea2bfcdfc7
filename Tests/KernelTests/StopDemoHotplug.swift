/// The hotplug half of what `make run` shows: the last online CPU taken offline
/// (`cpuDown`, through `stop_machine`) and brought back (`cpuUp`, INIT-SIPI-SIPI), with
/// the time each took and the online set before and after.
enum StopDemoHotplug {
  /// Returns whether the CPU went down and came back as it should.
  static func run() -> Bool {
    let before = CPUs.online
    guard let target = before.filter({ $0 != .boot }).last else {
      log("stop: one CPU online: no CPU to take offline")
      return true
    }
    // The cross-call demo's thread there may have ended without having left yet.
    guard waitUntil(milliseconds: 1000, { Threads.residentThreads(on: target) == 0 }) else {
      log("stop: CPU \(target) still has threads of its own after 1 s; it cannot go offline")
      return false
    }
    let start = CPUInstructions.readTSC()
    do throws(HotplugError) { try Hotplug.cpuDown(target) } catch {
      log("stop: cpu_down(\(target)) failed: \(line: HotplugSuite.describe(error))")
      return false
    }
    let down = CPUInstructions.readTSC()
    let offline = CPUs.online
    log(
      "stop: CPU \(target) offline: cpu_down took \(line: millis(down &- start)) ms; online \(line: list(before)) -> \(line: list(offline))"
    )
    do throws(HotplugError) { try Hotplug.cpuUp(target) } catch {
      log("stop: cpu_up(\(target)) failed: \(line: HotplugSuite.describe(error))")
      return false
    }
    let up = CPUInstructions.readTSC()
    let after = CPUs.online
    log(
      "stop: CPU \(target) online again: cpu_up took \(line: millis(up &- down)) ms; online \(line: list(offline)) -> \(line: list(after))"
    )
    let right = offline == before.subtracting(CPUSet([target])) && after == before
    if !right { log("stop: WRONG: the online set did not change as it should") }
    return right
  }

  /// `ticks` of the TSC in milliseconds, with one decimal.
  private static func millis(_ ticks: UInt64) -> LogLine {
    let microseconds = Clock.ticksToNanoseconds(ticks) / 1000
    return "\(microseconds / 1000).\(microseconds % 1000 / 100)"
  }

  /// `0-3` (cpulist form).
  private static func list(_ set: CPUSet) -> LogLine {
    var line = LogLine()
    line.append(cpuList: set.map { $0.rawValue })
    return line
  }
}
