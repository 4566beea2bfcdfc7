import Synchronization

/// The `ipi` case for an NMI that lands between the two xAPIC ICR writes of a send and
/// sends an IPI itself. The hardware race is a window of a few instructions, so the case
/// makes it certain: a test-only hook in `LocalAPIC` runs between the writes, sends an
/// NMI to this CPU, and waits for it; the NMI handler sends a reschedule IPI to a third
/// CPU. Both IPIs must reach the CPU each was sent to. Without the restore of ICR-high in
/// the send path, the interrupted send goes to the NMI's destination instead.
enum IPINMICase {
  /// [0]: NMIs taken by the test handler, [1]: the CPU the NMI's IPI goes to.
  /// Allocated by `run` while the hooks are installed, nil otherwise.
  nonisolated(unsafe) private static var control: UnsafeMutablePointer<Atomic<Int>>? = nil
  private static let nmiBoundNanoseconds: UInt64 = 100_000_000

  /// Sends a reschedule IPI to one CPU with an NMI taken between its ICR writes, the
  /// NMI sending a reschedule IPI to another CPU (this one when only two are online).
  static func run() -> TestResult {
    guard LocalAPIC.mode == .xAPIC else { return .skip("x2APIC: one WRMSR, no ICR pair to split") }
    let me = IPISuite.me
    guard let interrupted = IPISuite.others.first else { return .skip("one CPU online") }
    let third = IPISuite.others.next(after: interrupted) ?? me
    let block = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 2)
    block.initialize(to: Atomic<Int>(0))
    (block + 1).initialize(to: Atomic<Int>(third.rawValue))
    defer { block.deallocate() }
    let before = (0..<CPUs.possibleCount).map { reschedules(CPUIndex($0)) }
    control = block
    NMI.testOnlyHandler = nmiSendsToThird
    LocalAPIC.testOnlyBetweenICRWrites = takeNMIHere
    IPI.send(Vector.reschedule, to: interrupted)
    LocalAPIC.testOnlyBetweenICRWrites = nil
    NMI.testOnlyHandler = nil
    control = nil
    let nmis = block[0].load(ordering: .acquiring)  // pairs with the handler's release
    guard nmis == 1 else { return .fail("\(nmis) NMIs taken between the ICR writes, expected 1") }
    var expected = Array(repeating: 0, count: CPUs.possibleCount)
    expected[interrupted.rawValue] += 1
    expected[third.rawValue] += 1
    return expectReschedules(after: before, expected, interrupted: interrupted, third: third)
  }

  /// Waits up to 1 s for each CPU's reschedule count to rise by `expected`, then checks
  /// none rose by more.
  private static func expectReschedules(
    after before: [Int], _ expected: [Int], interrupted: CPUIndex, third: CPUIndex
  ) -> TestResult {
    for index in 0..<CPUs.possibleCount where expected[index] > 0 {
      let cpu = CPUIndex(index)
      guard waitUntil(milliseconds: 1000, { reschedules(cpu) - before[index] >= expected[index] }) else {
        return .fail(
          "CPU \(index) took \(reschedules(cpu) - before[index]) of \(expected[index]) reschedule IPI(s) within 1 s (interrupted send to CPU \(interrupted.rawValue), NMI's to CPU \(third.rawValue))"
        )
      }
    }
    for index in 0..<CPUs.possibleCount where reschedules(CPUIndex(index)) - before[index] != expected[index]
    {
      return .fail(
        "CPU \(index) took \(reschedules(CPUIndex(index)) - before[index]) reschedule IPI(s), expected \(expected[index])"
      )
    }
    return .pass
  }

  private static func reschedules(_ cpu: CPUIndex) -> Int {
    PerCPU.block(cpu).pointee.reschedules.load(ordering: .relaxed)
  }

  /// The hook between the ICR writes: one-shot (cleared first, so the NMI's own send
  /// passes straight through), sends an NMI to this CPU by the self shorthand, which
  /// needs ICR-low only and so leaves the interrupted ICR-high alone, and waits for it.
  private static let takeNMIHere: @convention(c) () -> Void = {
    LocalAPIC.testOnlyBetweenICRWrites = nil
    guard let control else { return }
    var command = InterruptCommand.nmi(to: APICID(0))
    command.shorthand = .selfOnly
    LocalAPIC.write(.interruptCommandLow, command.xAPICLow)
    let start = Clock.nanoseconds()
    // Acquire pairs with the handler's release: the NMI, and its send, are done.
    while control[0].load(ordering: .acquiring) == 0 && Clock.nanoseconds() &- start < nmiBoundNanoseconds {
      CPUInstructions.pause()
    }
  }

  /// The NMI handler while the case runs: sends a reschedule IPI to the third CPU
  /// through the real send path, then counts itself.
  private static let nmiSendsToThird: @convention(c) () -> Void = {
    guard let control else { return }
    IPI.send(Vector.reschedule, to: CPUIndex(control[1].load(ordering: .relaxed)))
    control[0].wrappingAdd(1, ordering: .releasing)  // pairs with the acquires above
  }
}
