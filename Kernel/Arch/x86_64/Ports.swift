/// Fixed I/O ports and MSRs used by the x86-64 platform, named as in their specs.
enum Port {
  /// COM1, the first 16550 UART (PC/AT convention).
  static let com1: UInt16 = 0x3F8
  /// QEMU's isa-debug-exit device, as configured by the harness and scripts/qemu.sh.
  static let debugExit: UInt16 = 0xF4
  /// 8254 PIT channel 0 and 2 data and the mode/command register (Intel 8254 datasheet).
  static let pitChannel0: UInt16 = 0x40
  static let pitChannel2: UInt16 = 0x42
  static let pitCommand: UInt16 = 0x43
  /// PC speaker / PIT channel 2 gate control ("port B"): bit 0 gate, bit 5 OUT2.
  static let systemControlB: UInt16 = 0x61
  /// 8259A PIC ports, masked at boot but for the NMI watchdog's line 0: Lockstep takes
  /// interrupts through the APIC.
  static let picMasterCommand: UInt16 = 0x20
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
