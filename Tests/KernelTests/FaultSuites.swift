/// Suites that crash on purpose, so the harness can check the panic report and the exit
/// status of a crash (`ktest=fault_ud`, `fault_pf`, `fault_triple`). Each one's only case
/// never returns; the harness expects the report, not a KTAP result.
enum FaultSuites {
  /// An address no page table maps: PML4 entry 0 covers it, but only the first 4 of
  /// its 512 PDPT entries are present (Boot/boot.asm).
  static let unmappedAddress: UInt64 = 0x0000_0050_DEAD_B000

  static let invalidOpcode = KernelTestSuite(
    name: "fault_ud",
    cases: [
      KernelTestCase(name: "ud2_panics") {
        CPUInstructions.invalidOpcode()
        return .fail("ud2 returned")
      }
    ])

  static let pageFault = KernelTestSuite(
    name: "fault_pf",
    cases: [
      KernelTestCase(name: "unmapped_read_panics") {
        let pointer = UnsafeMutablePointer<UInt64>(bitPattern: UInt(unmappedAddress))!
        let value = pointer.pointee
        return .fail("read \(hex: value) from an unmapped address")
      }
    ])

  static let tripleFault = KernelTestSuite(
    name: "fault_triple",
    cases: [
      KernelTestCase(name: "empty_idt_resets") {
        CPUInstructions.tripleFault()
        return .fail("the machine did not reset")
      }
    ])
}
