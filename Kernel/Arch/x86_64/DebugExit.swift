/// Leaving QEMU with a status the harness reads (QEMU exits with (value << 1) | 1).
enum DebugExit {
  /// What the kernel reports; the raw values are the contract with the harness.
  enum Status: UInt8 {
    case passed = 0x10  // QEMU status 33
    case testsFailed = 0x11  // 35
    case panicked = 0x12  // 37
  }

  /// Prints what the log holds, then ends the machine. Falls back to halting forever
  /// where the device is absent.
  static func exit(_ status: Status) -> Never {
    Console.flush()
    exitWithoutFlush(status)
  }

  /// Ends the machine at once: for a CPU that faulted while flushing.
  static func exitWithoutFlush(_ status: Status) -> Never {
    CPUInstructions.outb(Port.debugExit, status.rawValue)
    Idle.parkForever()
  }
}
