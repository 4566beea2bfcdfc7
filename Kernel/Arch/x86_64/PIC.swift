/// The 8259A PICs: masked, since every interrupt arrives through the local APIC.
enum PIC {
  /// Masks every line of both PICs (OCW1, Intel 8259A datasheet). Boot CPU, at start-up.
  static func maskAll() {
    CPUInstructions.outb(Port.picMasterData, 0xFF)
    CPUInstructions.outb(Port.picSlaveData, 0xFF)
  }
}
