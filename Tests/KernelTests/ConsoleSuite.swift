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

  /// Each AP's thread (`console/N`): its burst.
  private static let burstOnThisCPU: CallFunction = { _ in burst() }

  /// How long CPU 0 waits for the other CPUs' bursts, in ms. A liveness bound, not a
  /// speed test: under TCG on two host cores, with another QEMU running, 64 vCPUs take
  /// several seconds to print 1280 lines.
  static let boundMilliseconds: UInt64 = 30_000

  private static func concurrentLines() -> TestResult {
    let group = ThreadGroup(capacity: CPUs.online.count)
    for cpu in CPUs.online where cpu != X86_64Platform.currentCPU {
      group.start(ThreadName("console", cpu.rawValue), on: cpu, burstOnThisCPU, nil)
    }
    burst()
    if let late = group.wait(milliseconds: boundMilliseconds) { return .fail("bursts: \(line: late)") }
    KTAP.diagnostic(
      "\(CPUs.online.count) CPUs printed \(linesPerCPU) lines each; printer taken over \(Console.takeoverCount.load(ordering: .relaxed)) times, \(Console.skippedCount.load(ordering: .relaxed)) lines skipped"
    )
    return .pass
  }
}
