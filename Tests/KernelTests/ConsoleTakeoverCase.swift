import Synchronization

/// `ktest=console`, case `takeover_keeps_ring_whole`: the printer stalls (a UART that
/// stops taking bytes, through `Console.testOnlyStallUntil`) while the other CPUs log
/// two rings' worth of lines. A waiting CPU must take printing over; afterwards the
/// ring must be empty, without a printer, and still print.
///
/// The flood lines are KTAP diagnostics (`# console-flood cpu=N seq=M`), so that the
/// harness's check of whole `console-burst` lines is not disturbed.
enum ConsoleTakeoverCase {
  /// Lines logged while the printer is stalled: two full rings.
  static let floodLines = 2 * Console.slots

  /// The test case.
  static let testCase = KernelTestCase(name: "takeover_keeps_ring_whole", run: run)

  /// Lines each flooding CPU logs; set before the flooders start.
  private static let linesPerCPU = Atomic<Int>(0)

  /// The victim CPU's thread (`console-stall/1`): its line makes it the printer,
  /// which then stalls.
  private static let stallingLine: CallFunction = { _ in
    KTAP.diagnostic("console-takeover: CPU \(PerCPU.currentCPU) prints and stalls")
  }

  /// Every other AP's thread (`console-flood/N`), and run by the boot CPU: log the
  /// share of the flood.
  private static let flood: CallFunction = { _ in
    let cpu = PerCPU.currentCPU
    for sequence in 0..<linesPerCPU.load(ordering: .relaxed) {
      KTAP.diagnostic("console-flood cpu=\(cpu) seq=\(sequence)")
    }
  }

  private static func run() -> TestResult {
    let online = CPUs.online.count
    guard online >= 2 else { return .skip("needs a second CPU to stall") }
    guard LogRing<ConsoleDevice>.storageSize(slots: Console.slots) <= 256 * 1024 else {
      return .fail("a ring of \(Console.slots) records does not fit the 256 KiB console area")
    }
    Console.flush()
    let before = Console.takeoverCount.load(ordering: .relaxed)
    Console.testOnlyStallTakeoverCount.store(before, ordering: .relaxed)
    Console.testOnlyStallState.store(0, ordering: .relaxed)
    Console.testOnlyStallUntil.store(20_000_000_000, ordering: .relaxed)
    let group = ThreadGroup(capacity: online)
    group.start(ThreadName("console-stall", 1), on: CPUIndex(1), stallingLine, nil)
    guard waitUntil(milliseconds: 5_000, { Console.testOnlyStallState.load(ordering: .relaxed) == 1 }) else {
      Console.testOnlyStallUntil.store(0, ordering: .relaxed)
      if let late = group.wait(milliseconds: 25_000) { return .fail("no stall, then: \(line: late)") }
      return .fail("CPU 1 did not stall as the printer within 5 s")
    }
    let flooders = online - 1  // every CPU but the stalled one
    linesPerCPU.store((floodLines + flooders - 1) / flooders, ordering: .relaxed)
    for cpu in CPUs.online where cpu.rawValue > 1 {
      group.start(ThreadName("console-flood", cpu.rawValue), on: cpu, flood, nil)
    }
    flood(nil)
    if let late = group.wait(milliseconds: 60_000) {
      return .fail("logging after the takeover, bound 60 s: \(line: late)")
    }
    return verify(since: before)
  }

  /// After the flood: a takeover happened, the stalled CPU resumed, the ring drained.
  private static func verify(since before: Int) -> TestResult {
    Console.flush()
    let takeovers = Console.takeoverCount.load(ordering: .relaxed) - before
    guard takeovers > 0 else { return .fail("no CPU took printing over from the stalled one") }
    guard Console.testOnlyStallState.load(ordering: .relaxed) == 2 else {
      return .fail("the stalled printer did not resume")
    }
    guard Console.unprintedCount == 0, !Console.hasPrinter else {
      return .fail(
        "ring not drained: \(Console.unprintedCount) lines left, printer held \(Console.hasPrinter)")
    }
    KTAP.diagnostic(
      "console-takeover: \(floodLines) lines over a stalled printer; \(takeovers) takeovers, \(Console.skippedCount.load(ordering: .relaxed)) lines skipped in all"
    )
    return .pass
  }
}
