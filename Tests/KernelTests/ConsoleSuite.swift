import Synchronization

/// `ktest=console`: every online CPU prints a burst of lines at the same time.
///
/// The kernel cannot read its own serial output, so the verdict on the text is the
/// harness's: every `console-burst` line must be whole (`Matrix.console`). In here the
/// case checks that every CPU finished its burst within a bound.
enum ConsoleSuite {
  /// Lines each CPU prints.
  static let linesPerCPU = 20

  static let suite = KernelTestSuite(
    name: "console",
    cases: [KernelTestCase(name: "concurrent_lines_stay_whole", run: concurrentLines)])

  /// One CPU's burst. The payload is long so that an interleaving would be visible.
  static func burst() {
    let cpu = PerCPU.currentIndexOrUnknown
    for sequence in 0..<linesPerCPU {
      log(
        "console-burst cpu=\(cpu) seq=\(sequence) 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"
      )
    }
  }

  private static func concurrentLines() -> TestResult {
    var before: [Int] = []
    for cpu in CPUs.online {
      // Acquire pairs with the release in Idle.acknowledge().
      before.append(PerCPU.block(cpu.rawValue).pointee.acknowledgements.load(ordering: .acquiring))
    }
    for cpu in CPUs.online where cpu.rawValue > 0 { Idle.post(.logBurst, to: cpu.rawValue) }
    burst()
    for (position, cpu) in CPUs.online.enumerated() where cpu.rawValue > 0 {
      let block = PerCPU.block(cpu.rawValue)
      let done = waitUntil(milliseconds: 2000) {
        block.pointee.acknowledgements.load(ordering: .acquiring) > before[position]
      }
      if !done { return .fail("CPU \(cpu.rawValue) did not finish its burst within 2 s") }
    }
    KTAP.diagnostic(
      "\(CPUs.online.count) CPUs printed \(linesPerCPU) lines each; printer taken over \(Console.takeoverCount.load(ordering: .relaxed)) times, \(Console.skippedCount.load(ordering: .relaxed)) lines skipped"
    )
    return .pass
  }
}
