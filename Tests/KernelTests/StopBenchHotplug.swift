/// `bench`: `cpu_down` and `cpu_up` of the last online CPU, from the call to its
/// return, one sample of each per cycle. The CPU ends online whatever happens.
enum StopBenchHotplug {
  static func run(_ budget: StopBenchmark.Budget) {
    guard let target = CPUs.online.filter({ $0 != .boot }).last else { return }
    // The benchmarks before may have ended threads there that have yet to leave.
    guard waitUntil(milliseconds: 1000, { Threads.residentThreads(on: target) == 0 }) else {
      log("bench: CPU \(target) still had threads of its own after 1 s; no cpu_down or cpu_up figures")
      return
    }
    var downs = BenchLine("cpu_down", unit: "ns")
    var ups = BenchLine("cpu_up", unit: "ns")
    var taken = 0
    let deadline = Clock.nanoseconds() + budget.milliseconds * 1_000_000
    while taken < budget.samples && Clock.nanoseconds() < deadline {
      let start = CPUInstructions.readTSC()
      do throws(HotplugError) { try Hotplug.cpuDown(target) } catch {
        log("bench: cpuDown(\(target)): \(line: HotplugSuite.describe(error)); no more hotplug samples")
        break
      }
      let down = CPUInstructions.readTSC()
      do throws(HotplugError) { try Hotplug.cpuUp(target) } catch {
        log("bench: cpuUp(\(target)): \(line: HotplugSuite.describe(error)); no more hotplug samples")
        break
      }
      let up = CPUInstructions.readTSC()
      downs.add(Clock.ticksToNanoseconds(down &- start))
      ups.add(Clock.ticksToNanoseconds(up &- down))
      taken += 1
    }
    downs.flush()
    ups.flush()
    StopBenchmark.report("cpu_down", budget, taken: taken, failed: 0)
    if CPUs.state(of: target) != .online { log("bench: CPU \(target) was left offline") }
    log(
      "bench-note cpu_down/cpu_up: CPU \(target.rawValue), the last online one, taken down (stop_machine, then its death report) and brought back (INIT-SIPI-SIPI to online and active), call to return"
    )
  }
}
