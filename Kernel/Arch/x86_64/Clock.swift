/// Monotonic time from the TSC, calibrated against the 8254 PIT at boot.
///
/// QEMU (TCG and KVM) gives every vCPU the same TSC, so timestamps taken on different
/// CPUs compare directly; bring-up latencies rely on that.
enum Clock {
  /// TSC ticks per millisecond. A 3 GHz guess until `calibrate` runs, so waits before
  /// calibration are still bounded.
  nonisolated(unsafe) private(set) static var ticksPerMillisecond: UInt64 = 3_000_000
  /// TSC at calibration: time zero.
  nonisolated(unsafe) private(set) static var bootTSC: UInt64 = 0
  /// Whether `calibrate` succeeded.
  nonisolated(unsafe) private(set) static var isCalibrated = false
  /// Conversion factors in 32.32 fixed point, so conversions multiply and shift:
  /// no 128-bit division (which would need compiler-rt's __udivti3).
  nonisolated(unsafe) private static var nanosecondsPerTick32: UInt64 = scale(1_000_000, per: 3_000_000)
  nonisolated(unsafe) private static var ticksPerNanosecond32: UInt64 = scale(3_000_000, per: 1_000_000)

  /// Nanoseconds since calibration. Any context.
  static func nanoseconds() -> UInt64 {
    ticksToNanoseconds(CPUInstructions.readTSC() &- bootTSC)
  }

  /// Converts a TSC interval to nanoseconds; exact to 1 part in 10^9, no overflow for
  /// any 64-bit interval.
  static func ticksToNanoseconds(_ ticks: UInt64) -> UInt64 {
    multiplyShift(ticks, nanosecondsPerTick32)
  }

  /// Converts nanoseconds to TSC ticks.
  static func nanosecondsToTicks(_ nanoseconds: UInt64) -> UInt64 {
    multiplyShift(nanoseconds, ticksPerNanosecond32)
  }

  /// (value * factor) >> 32 over the full 128-bit product.
  private static func multiplyShift(_ value: UInt64, _ factor: UInt64) -> UInt64 {
    let product = value.multipliedFullWidth(by: factor)
    return product.high << 32 | product.low >> 32
  }

  /// numerator / denominator in 32.32 fixed point.
  private static func scale(_ numerator: UInt64, per denominator: UInt64) -> UInt64 {
    (numerator << 32) / denominator
  }

  private static func setRate(ticksPerMillisecond rate: UInt64) {
    ticksPerMillisecond = rate
    nanosecondsPerTick32 = scale(1_000_000, per: rate)
    ticksPerNanosecond32 = scale(rate, per: 1_000_000)
  }

  /// Busy-waits `microseconds`. Interrupts as they are; bounded by construction.
  static func delay(microseconds: UInt64) {
    let end = CPUInstructions.readTSC() &+ nanosecondsToTicks(microseconds * 1000)
    while CPUInstructions.readTSC() < end { CPUInstructions.pause() }
  }

  /// Measures the TSC against PIT channel 2 over 10 ms, three times, keeping the
  /// fastest run (the one least disturbed by the host). Boot CPU, interrupts off.
  static func calibrate() {
    var best: UInt64 = 0
    for _ in 0..<3 {
      if let ticks = PIT.measureTicks(milliseconds: 10), ticks > 0 {
        best = best == 0 ? ticks : min(best, ticks)
      }
    }
    guard best > 0 else {
      log("clock: PIT calibration failed; assuming \(ticksPerMillisecond / 1000) MHz")
      bootTSC = CPUInstructions.readTSC()
      return
    }
    setRate(ticksPerMillisecond: best / 10)
    bootTSC = CPUInstructions.readTSC()
    isCalibrated = true
    log("clock: TSC \(ticksPerMillisecond / 1000) MHz (PIT, 10 ms)")
  }
}

/// The 8254 PIT's channel 2, used once as a stopwatch for TSC calibration.
enum PIT {
  /// Input clock of the 8254 in the PC, Hz.
  static let frequency: UInt64 = 1_193_182
  private static let gateBit: UInt8 = 1 << 0
  private static let speakerBit: UInt8 = 1 << 1
  private static let outputBit: UInt8 = 1 << 5
  /// Channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count), binary.
  private static let channel2Mode0: UInt8 = 0xB0

  /// TSC ticks while channel 2 counts down `milliseconds` (at most 50), or nil if its
  /// output never rose within 10x the expected time.
  static func measureTicks(milliseconds: UInt64) -> UInt64? {
    precondition(milliseconds <= 50, "the 16-bit counter holds at most ~54 ms")
    let count = frequency * milliseconds / 1000
    let control = CPUInstructions.inb(Port.systemControlB)
    CPUInstructions.outb(Port.systemControlB, (control & ~speakerBit) | gateBit)
    CPUInstructions.outb(Port.pitCommand, channel2Mode0)
    CPUInstructions.outb(Port.pitChannel2, UInt8(truncatingIfNeeded: count))
    CPUInstructions.outb(Port.pitChannel2, UInt8(truncatingIfNeeded: count >> 8))
    let start = CPUInstructions.readTSC()
    // Bound: 10x the interval at an assumed 10 GHz upper TSC rate.
    let limit = milliseconds * 10 * 10_000_000
    while CPUInstructions.inb(Port.systemControlB) & outputBit == 0 {
      if CPUInstructions.readTSC() &- start > limit { return nil }
    }
    return CPUInstructions.readTSC() &- start
  }
}

/// The ACPI power-management timer: 3.579545 MHz, 24 or 32 bits, found through the FADT.
/// A clock independent of PIT and TSC, used to cross-check the calibration.
enum PMTimer {
  static let frequency: UInt64 = 3_579_545
  nonisolated(unsafe) static var port: UInt16 = 0
  nonisolated(unsafe) static var is32Bit = false

  static var isAvailable: Bool { port != 0 }

  static func read() -> UInt32 {
    let value = CPUInstructions.inl(port)
    return is32Bit ? value : value & 0xFF_FFFF
  }

  /// Ticks from `earlier` to `later`, allowing one wrap.
  static func elapsed(from earlier: UInt32, to later: UInt32) -> UInt64 {
    let modulus: UInt64 = is32Bit ? 1 << 32 : 1 << 24
    return (UInt64(later) &+ modulus &- UInt64(earlier)) % modulus
  }
}
