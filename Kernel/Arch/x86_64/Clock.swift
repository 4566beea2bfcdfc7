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

  /// Measures the TSC over 20 ms against PIT channel 2 and, when the FADT gave one,
  /// the ACPI PM timer, three times each, and keeps each clock's fastest run: a host
  /// that deschedules the vCPU can only add ticks to a run, never remove them. The PM
  /// timer wins whenever it answered; the PIT serves machines without one. Linux uses
  /// the PIT unless the two disagree by more than 10%, but under nested KVM the emulated
  /// PIT was seen here 10x fast with a busy host, and 3.5% fast while 288 vCPUs were
  /// being created, beyond the `boot` suite's 2% check; the PM timer is read from the
  /// host's clock each time and was right both times.
  /// Boot CPU, interrupts off, after `PMTimer.configure`.
  static func calibrate() {
    let pit = fastest(of: { PIT.measureTicks(milliseconds: 20) })
    let pm = PMTimer.isAvailable ? fastest(of: { PMTimer.measureTicks(milliseconds: 20) }) : 0
    let rate = pm > 0 ? pm : pit
    if pm > 0 && pit > 0 && distancePerMille(pit, pm) > 20 {
      log("clock: PIT says \(pit / 20_000) MHz, PM timer \(pm / 20_000) MHz; using the PM timer")
    }
    bootTSC = CPUInstructions.readTSC()
    guard rate > 0 else {
      log("clock: no PIT or PM timer answered; assuming \(ticksPerMillisecond / 1000) MHz")
      return
    }
    setRate(ticksPerMillisecond: rate / 20)
    isCalibrated = true
    log("clock: TSC \(ticksPerMillisecond / 1000) MHz (PIT \(pit / 20_000) MHz, PM timer \(pm / 20_000) MHz)")
  }

  /// Whether a measurement of `ticks` whose end points are known to within
  /// `uncertainty` ticks in all is good to 1%. Under nested KVM one port read can take
  /// 100 us, so a fixed bound (Linux's SMI_TRESHOLD) would reject every reading there.
  static func isPrecise(_ ticks: UInt64, uncertainty: UInt64) -> Bool {
    uncertainty <= ticks / 100
  }

  /// |a - b| relative to b, in parts per thousand.
  static func distancePerMille(_ a: UInt64, _ b: UInt64) -> UInt64 {
    (a > b ? a - b : b - a) * 1000 / max(b, 1)
  }

  /// The smallest of three measurements, ignoring failed ones (0 if all failed).
  private static func fastest(of measure: () -> UInt64?) -> UInt64 {
    var best: UInt64 = 0
    for _ in 0..<3 {
      if let ticks = measure(), ticks > 0 { best = best == 0 ? ticks : min(best, ticks) }
    }
    return best
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
  /// output never rose within 10x the expected time, or if the read that saw it rise
  /// took too long to say when (see `Clock.isPrecise`).
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
    // The edge happened between the last poll that saw OUT2 low and the one that saw
    // it high: from just before the former to just after the latter.
    var lastLow = start
    while true {
      let before = CPUInstructions.readTSC()
      let risen = CPUInstructions.inb(Port.systemControlB) & outputBit != 0
      let after = CPUInstructions.readTSC()
      if risen { return Clock.isPrecise(after - start, uncertainty: after - lastLow) ? after - start : nil }
      if after &- start > limit { return nil }
      lastLow = before
    }
  }
}

/// The ACPI power-management timer: 3.579545 MHz, 24 or 32 bits, found through the FADT.
/// A clock independent of PIT and TSC, used to cross-check the calibration.
enum PMTimer {
  static let frequency: UInt64 = 3_579_545
  nonisolated(unsafe) static var port: UInt16 = 0
  nonisolated(unsafe) static var is32Bit = false

  static var isAvailable: Bool { port != 0 }

  /// Takes the timer's port from the FADT. Boot CPU, before `Clock.calibrate()`.
  static func configure(_ fadt: FADT) {
    guard let timerPort = fadt.pmTimerPort, timerPort <= 0xFFFF else { return }
    port = UInt16(timerPort)
    is32Bit = fadt.pmTimerIs32Bit
  }

  static func read() -> UInt32 {
    let value = CPUInstructions.inl(port)
    return is32Bit ? value : value & 0xFF_FFFF
  }

  /// TSC ticks while the PM timer advances `milliseconds` (at most 1000), or nil if it
  /// did not advance that far within 10x the time at an assumed 10 GHz TSC, or if its
  /// readings could not be pinned to the TSC closely enough (see `Clock.isPrecise`).
  static func measureTicks(milliseconds: UInt64) -> UInt64? {
    let window = frequency * milliseconds / 1000
    let limit = milliseconds * 10 * 10_000_000
    let start = bracketedRead()
    while true {
      let now = bracketedRead()
      let ticks = elapsed(from: start.timer, to: now.timer)
      if ticks >= window {
        let tsc = (now.tsc - start.tsc) * window / ticks
        return Clock.isPrecise(tsc, uncertainty: start.width + now.width) ? tsc : nil
      }
      if now.tsc &- start.tsc > limit { return nil }
    }
  }

  /// The timer and the TSC read together, as Linux's tsc_read_refs(): each timer read
  /// sits between two TSC reads, and of three tries the narrowest pair is kept (a wide
  /// one means the host or firmware took the CPU away mid-read).
  private static func bracketedRead() -> (timer: UInt32, tsc: UInt64, width: UInt64) {
    var best = (timer: UInt32(0), tsc: UInt64(0), width: UInt64.max)
    for _ in 0..<3 {
      let before = CPUInstructions.readTSC()
      let timer = read()
      let after = CPUInstructions.readTSC()
      if after - before < best.width { best = (timer, before / 2 + after / 2, after - before) }
    }
    return best
  }

  /// Ticks from `earlier` to `later`, allowing one wrap.
  static func elapsed(from earlier: UInt32, to later: UInt32) -> UInt64 {
    let modulus: UInt64 = is32Bit ? 1 << 32 : 1 << 24
    return (UInt64(later) &+ modulus &- UInt64(earlier)) % modulus
  }
}
