import Synchronization

/// The kernel log: whole lines, never interleaved across CPUs, usable from NMI and panic
/// context, and never making a CPU wait for the UART while another prints.
///
/// Modelled on Linux's printk: a writer copies its line into the next record of a
/// lock-free ring and leaves; whichever CPU wins the printer role drains committed
/// records to the serial port. The ring's protocol, takeover included, is portable and
/// host-tested (`Kernel/SMP/LogRing.swift`); this file gives it the UART, the clock and
/// the CPU's identity, and 256 KiB of static storage (`KernelSymbols.consoleRing`).
/// A spinlock around the UART was tried first and failed the `console` suite at 64
/// vCPUs: on two host cores a printing vCPU loses its host CPU to the vCPUs spinning for
/// the lock, so lines took seconds and the lock had to be taken over mid-line.
enum Console {
  /// Records in the ring: `LogRing.storageSize(slots: 1024)` fits the 256 KiB area.
  static let slots = 1024

  /// Records whose writer was too slow to commit (stopped mid-write) and were skipped.
  static let skippedCount = Atomic<Int>(0)
  /// Times the printer role was taken from a CPU that made no progress for too long.
  static let takeoverCount = Atomic<Int>(0)

  /// The ring over its static storage: a view, built per call (no lazy global).
  private static var ring: LogRing<ConsoleDevice> {
    LogRing(storage: KernelSymbols.consoleRing, slots: slots)
  }

  /// Appends `line` to the log and prints whatever is pending if no other CPU is.
  /// Any context, including NMI and panic; never allocates.
  static func write(_ line: borrowing LogLine) {
    ring.write(line)
  }

  /// Prints everything pending, taking the printer role over from a CPU that makes no
  /// progress. Call before leaving the machine.
  static func flush() {
    ring.flush()
  }

  /// Makes the running CPU's output urgent: it takes printing over after 20 ms without
  /// progress rather than 1 s. Panic context.
  static func markUrgent() {
    ring.markUrgent()
  }

  /// Lines reserved and not yet printed (a relaxed snapshot, for tests).
  static var unprintedCount: Int { Int(truncatingIfNeeded: ring.unprintedCount) }

  /// Whether some CPU holds the printer role now (a relaxed snapshot, for tests).
  static var hasPrinter: Bool { ring.cursorSnapshot.owner != 0 }

  /// Test only (`ConsoleSuite`): the next printer to wait for the UART stalls there
  /// until the takeover count passes `takeoverCount`, or for at most `nanoseconds`: a
  /// UART that stops taking bytes. 0 when unarmed.
  static let testOnlyStallUntil = Atomic<UInt64>(0)
  static let testOnlyStallTakeoverCount = Atomic<Int>(0)
  /// Test only: set by the stalled printer when it stalls and when it resumes.
  static let testOnlyStallState = Atomic<Int>(0)
}

/// The UART, clock and CPU identity behind `Console`'s ring.
enum ConsoleDevice: LogRingPlatform {
  /// The running CPU's index + 1, or `unknownOwner` for an AP before its per-CPU block.
  static var logOwnerID: UInt16 {
    let index = PerCPU.currentCPU.rawValue
    return index >= 0 && index < Int(LogCursor.unknownOwner) - 1
      ? UInt16(index + 1) : LogCursor.unknownOwner
  }

  /// TSC nanoseconds.
  static func nanoseconds() -> UInt64 { Clock.nanoseconds() }

  /// `pause`.
  static func relax() { CPUInstructions.pause() }

  /// The UART waits inside `Serial.write`; here only the test stall waits.
  static func waitForDevice() {
    if Console.testOnlyStallUntil.load(ordering: .relaxed) != 0 { stallForTest() }
  }

  /// Up to a FIFO's worth of bytes to COM1.
  static func send(_ bytes: UnsafeBufferPointer<UInt8>) { Serial.write(bytes) }

  /// The 16550's transmit FIFO depth.
  static var deviceBurst: Int { 16 }

  /// 1 s without progress before a takeover (20 ms when urgent), 100 ms for a stuck
  /// writer, and 3 s of no progress at all before a waiter gives up.
  static var logTiming: LogRingTiming {
    LogRingTiming(
      takeoverAfter: 1_000_000_000, urgentTakeoverAfter: 20_000_000, skipAfter: 100_000_000,
      giveUpAfter: 3_000_000_000)
  }

  /// Counts into `Console`'s statistics.
  static func count(_ event: LogRingEvent) {
    switch event {
    case .takeover: Console.takeoverCount.wrappingAdd(1, ordering: .relaxed)
    case .skipped: Console.skippedCount.wrappingAdd(1, ordering: .relaxed)
    }
  }

  /// The test stall (see `Console.testOnlyStallUntil`): one CPU claims it and spins.
  private static func stallForTest() {
    let limit = Console.testOnlyStallUntil.exchange(0, ordering: .relaxed)
    guard limit != 0 else { return }
    let start = Clock.nanoseconds()
    Console.testOnlyStallState.store(1, ordering: .relaxed)
    let before = Console.testOnlyStallTakeoverCount.load(ordering: .relaxed)
    while Console.takeoverCount.load(ordering: .relaxed) <= before && Clock.nanoseconds() &- start < limit {
      CPUInstructions.pause()
    }
    Console.testOnlyStallState.store(2, ordering: .relaxed)
  }
}

/// Writes one line to the log. Any context; never allocates.
///
/// `log("Brought up \(count) CPUs")` builds the line in a fixed buffer on the stack
/// through `LogLine`'s own interpolation: no `String` is created.
func log(_ line: LogLine) {
  Console.write(line)
}
