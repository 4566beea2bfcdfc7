/// Fixed I/O ports and MSRs used by the x86-64 platform, named as in their specs.
enum Port {
  /// COM1, the first 16550 UART (PC/AT convention).
  static let com1: UInt16 = 0x3F8
  /// QEMU's isa-debug-exit device, as configured by the harness and scripts/qemu.sh.
  static let debugExit: UInt16 = 0xF4
  /// 8254 PIT channel 2 data and the mode/command register (Intel 8254 datasheet).
  static let pitChannel2: UInt16 = 0x42
  static let pitCommand: UInt16 = 0x43
  /// PC speaker / PIT channel 2 gate control ("port B"): bit 0 gate, bit 5 OUT2.
  static let systemControlB: UInt16 = 0x61
  /// 8259A PIC data ports, masked at boot: Lockstep takes interrupts through the APIC.
  static let picMasterData: UInt16 = 0x21
  static let picSlaveData: UInt16 = 0xA1
}

/// Model-specific registers (SDM Vol. 4, Table 2-2).
enum MSR {
  static let apicBase: UInt32 = 0x1B
  static let gsBase: UInt32 = 0xC000_0101
  /// x2APIC registers are MSRs 0x800 + (xAPIC offset >> 4) (SDM Vol. 3A §11.12.1.2).
  static let x2APICBase: UInt32 = 0x800
}

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
    while true {
      CPUInstructions.disableInterrupts()
      CPUInstructions.halt()
    }
  }
}
