// The Fixed ACPI Description Table, read only for the ACPI power-management timer, a fixed
// 3.579545 MHz counter the kernel can calibrate the TSC against.
// ACPI 6.5 §5.2.9 "Fixed ACPI Description Table (FADT)", §4.8.3.3 "Power Management Timer".

/// The FADT fields Lockstep uses: where the PM timer is and how wide it counts.
///
/// Fields (§5.2.9, Table 5.9): PM_TMR_BLK at offset 76 (u32 I/O port, 0 = none), Flags at 112
/// (u32, bit 8 TMR_VAL_EXT: the counter is 32 bits, else 24), X_PM_TMR_BLK at 208 (a 12-byte
/// Generic Address Structure, §5.2.3.2: address space ID at +0, address u64 at +4).
/// Linux: acpi_pm_read() setup in drivers/clocksource/acpi_pm.c
public struct FADT: Equatable, Sendable {
  /// The PM timer's I/O port, or `nil` if the machine has none.
  public var pmTimerPort: UInt32?
  /// TMR_VAL_EXT: the PM timer counts 32 bits rather than 24.
  public var pmTimerIs32Bit: Bool

  /// Offset of PM_TMR_BLK.
  static let pmTimerBlockOffset = 76
  /// Offset of Flags.
  static let flagsOffset = 112
  /// Flags bit 8, TMR_VAL_EXT.
  static let timerValueExtendedFlag: UInt32 = 1 << 8
  /// Offset of X_PM_TMR_BLK.
  static let extendedPMTimerBlockOffset = 208
  /// Generic Address Structure address space ID 1: system I/O (§5.2.3.2, Table 5.1).
  static let systemIOSpace: UInt8 = 1

  /// Creates an FADT value.
  ///
  /// - Parameters:
  ///   - pmTimerPort: the PM timer port, if any.
  ///   - pmTimerIs32Bit: whether the timer is 32 bits wide.
  public init(pmTimerPort: UInt32?, pmTimerIs32Bit: Bool) {
    self.pmTimerPort = pmTimerPort
    self.pmTimerIs32Bit = pmTimerIs32Bit
  }

  /// Validates an FADT and finds the PM timer.
  ///
  /// X_PM_TMR_BLK is preferred when the table is long enough to hold it (220 bytes) and it
  /// names a non-zero system I/O address; otherwise PM_TMR_BLK is used.
  /// - Note: Fields past the end of a short (older) FADT read as zero, as ACPICA treats them,
  ///   so a short table means "no PM timer" rather than an error. A port above 0xFFFF is not
  ///   an x86 I/O port and also counts as none.
  /// - Parameter table: the FADT's bytes (signature `"FACP"`), at least its `length`.
  /// - Returns: the timer fields.
  /// - Throws: the errors of `SDTHeader.validate(_:signature:)`.
  public static func parse(_ table: UnsafeRawBufferPointer) throws(ACPIError) -> FADT {
    let (_, bytes) = try SDTHeader.validatedTable(table, signature: ACPI.signature("FACP"))
    let flags = field32(bytes, at: flagsOffset)
    var port = UInt64(field32(bytes, at: pmTimerBlockOffset))
    if let extended = extendedPort(bytes) {
      port = extended
    }
    return FADT(
      pmTimerPort: port != 0 && port <= 0xFFFF ? UInt32(port) : nil,
      pmTimerIs32Bit: flags & timerValueExtendedFlag != 0)
  }

  /// The u32 at `offset`, or 0 if the table ends before it.
  private static func field32(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
    bytes.count >= offset + 4 ? bytes.acpiUInt32(at: offset) : 0
  }

  /// X_PM_TMR_BLK's address if the table holds it and it is a usable system I/O port.
  private static func extendedPort(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
    let gas = extendedPMTimerBlockOffset
    guard bytes.count >= gas + 12, bytes.acpiUInt8(at: gas) == systemIOSpace else { return nil }
    let address = bytes.acpiUInt64(at: gas + 4)
    return address != 0 && address <= 0xFFFF ? address : nil
  }
}
