import Synchronization

/// The kernel log: whole lines, never interleaved across CPUs, usable from NMI and
/// panic context.
///
/// A line is composed on the caller's stack (`LogLine`) and written under a lock that
/// records its owner. A CPU that finds itself the owner (an NMI or a panic arrived while
/// it was printing) writes anyway: waiting for itself would never end. A CPU that waits
/// longer than `stealAfterTicks` for another owner (that CPU may have been stopped by an
/// NMI while printing) takes the lock over and says so, so the log never hangs.
enum Console {
  /// CPU index + 1 of the CPU writing a line, 0 when free.
  private static let owner = Atomic<Int>(0)
  /// How many times the lock was taken over from a stuck owner.
  static let stolenCount = Atomic<Int>(0)
  /// About 50 ms at 3 GHz; before TSC calibration this is the only bound we can name.
  private static let stealAfterTicks: UInt64 = 150_000_000

  /// Writes `line` and a newline as one unit.
  /// Any context, including NMI and panic; never allocates.
  static func write(_ line: borrowing LogLine) {
    let me = PerCPU.currentIndexOrUnknown + 1
    let heldAlready = owner.load(ordering: .relaxed) == me
    let stolen = heldAlready ? false : acquire(me)
    if stolen {
      send("console: lock taken over from a CPU that held it too long")
    }
    line.withBytes { bytes in
      for byte in bytes { Serial.send(byte) }
    }
    Serial.send(0x0A)
    if !heldAlready {
      // Release the line's bytes before the lock; pairs with the acquire in acquire().
      owner.store(0, ordering: .releasing)
    }
  }

  /// Takes the lock for CPU `me` (index + 1); returns true if it had to steal it.
  private static func acquire(_ me: Int) -> Bool {
    let start = CPUInstructions.readTSC()
    while true {
      // Acquire pairs with the releasing store in write(): the previous line is out.
      if owner.compareExchange(expected: 0, desired: me, ordering: .acquiring).exchanged {
        return false
      }
      if CPUInstructions.readTSC() &- start > stealAfterTicks {
        stolenCount.wrappingAdd(1, ordering: .relaxed)
        owner.store(me, ordering: .relaxed)
        return true
      }
      CPUInstructions.pause()
    }
  }

  private static func send(_ text: StaticString) {
    text.withUTF8Buffer { for byte in $0 { Serial.send(byte) } }
    Serial.send(0x0A)
  }
}

/// Writes one line to the console. Any context; never allocates.
///
/// `log("Brought up \(count) CPUs")` builds the line in a fixed buffer on the stack
/// through `LogLine`'s own interpolation: no `String` is created.
func log(_ line: LogLine) {
  Console.write(line)
}
