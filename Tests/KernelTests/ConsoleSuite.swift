import Synchronization

/// `ktest=console`: every online CPU prints a burst of lines at the same time.
///
/// The kernel cannot read its own serial output, so the verdict on the text is the
/// harness's: every `console-burst` line must be whole (`Matrix.console`). In here the
/// case checks that every CPU finished its burst within a bound. The second case forces a
/// printer takeover (`ConsoleTakeoverCase`).
enum ConsoleSuite {
  /// Lines each CPU prints.
  static let linesPerCPU = 20

  static let suite = KernelTestSuite(
    name: "console",
    cases: [
      KernelTestCase(name: "concurrent_lines_stay_whole", run: concurrentLines),
      ConsoleTakeoverCase.testCase,
    ])

  /// One CPU's burst, as KTAP diagnostics. The payload is long so that an
  /// interleaving would be visible.
  static func burst() {
    let cpu = PerCPU.currentCPU
    for sequence in 0..<linesPerCPU {
      KTAP.diagnostic(
        "console-burst cpu=\(cpu) seq=\(sequence) 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"
      )
    }
  }

  /// Posted to each AP: print, then count in.
  private static let burstAndCount: CallFunction = { info in
    burst()
    countOnThisCPU(info)
  }

  private static func concurrentLines() -> TestResult {
    let counters = CPUCounters()
    for cpu in CPUs.online where cpu.rawValue > 0 {
      Idle.post(burstAndCount, counters.info, to: cpu)
    }
    burst()
    // A liveness bound, not a speed test: under TCG on two host cores, with another
    // QEMU running, 64 vCPUs take several seconds to print 1280 lines.
    let others = CPUs.online.count - 1
    if !waitUntil(milliseconds: 30_000, { counters.total == others }) {
      for cpu in CPUs.online where cpu.rawValue > 0 && counters.value(cpu) == 0 {
        return .fail("CPU \(cpu.rawValue) did not finish its burst within 30 s")
      }
    }
    KTAP.diagnostic(
      "\(CPUs.online.count) CPUs printed \(linesPerCPU) lines each; printer taken over \(Console.takeoverCount.load(ordering: .relaxed)) times, \(Console.skippedCount.load(ordering: .relaxed)) lines skipped"
    )
    return .pass
  }
}
