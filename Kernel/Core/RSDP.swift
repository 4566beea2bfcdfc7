// The Root System Description Pointer: where the firmware says the root table is.
// ACPI 6.5 §5.2.5.3 "Root System Description Pointer (RSDP) Structure".

/// The Root System Description Pointer.
///
/// Layout (§5.2.5.3, Table 5.3): `"RSD PTR "` at 0 (8 bytes), checksum at 8 (over bytes
/// 0..<20), OEM ID at 9, revision at 15, RSDT address at 16 (u32); from revision 2 on also
/// length at 20 (u32), XSDT address at 24 (u64) and the extended checksum at 32 (over
/// `length` bytes).
/// Linux: struct acpi_table_rsdp, acpi_tb_validate_rsdp()
public struct RSDP: Equatable, Sendable {
  /// 0 for ACPI 1.0 (RSDT only), 2 or more for ACPI 2.0+ (XSDT).
  public var revision: UInt8
  /// Physical address of the RSDT (32-bit entries).
  public var rsdtAddress: UInt32
  /// Physical address of the XSDT (64-bit entries); `nil` before revision 2 or if zero.
  public var xsdtAddress: UInt64?

  /// Bytes covered by the ACPI 1.0 checksum, and the size of a revision 0 RSDP.
  public static let version1Size = 20
  /// Size of the revision 2 RSDP, the least its length field may say.
  public static let version2Size = 36

  /// Creates an RSDP value.
  ///
  /// - Parameters:
  ///   - revision: the RSDP revision.
  ///   - rsdtAddress: the RSDT address.
  ///   - xsdtAddress: the XSDT address, if any.
  public init(revision: UInt8, rsdtAddress: UInt32, xsdtAddress: UInt64?) {
    self.revision = revision
    self.rsdtAddress = rsdtAddress
    self.xsdtAddress = xsdtAddress
  }

  /// Parses and validates an RSDP.
  ///
  /// Checks the signature and the checksum over the first 20 bytes; from revision 2, also the
  /// length field and the extended checksum over `length` bytes.
  /// - Note: Revision 1 is not defined by ACPI; like ACPICA (which uses the XSDT only when
  ///   `revision > 1`), it is read with the 1.0 layout rather than rejected.
  /// - Parameter bytes: the RSDP bytes (at least 20; at least 36 from revision 2). Extra
  ///   bytes are ignored.
  /// - Returns: the RSDP.
  /// - Throws: `.truncated`, `.badSignature`, `.badChecksum`, `.badLength`.
  public static func parse(_ bytes: UnsafeRawBufferPointer) throws(ACPIError) -> RSDP {
    guard bytes.count >= version1Size else { throw .truncated }
    guard hasSignature(bytes) else { throw .badSignature }
    guard ACPI.checksumIsValid(bytes.prefix(bytes: version1Size)) else { throw .badChecksum }
    let revision = bytes.acpiUInt8(at: 15)
    let rsdtAddress = bytes.acpiUInt32(at: 16)
    guard revision >= 2 else {
      return RSDP(revision: revision, rsdtAddress: rsdtAddress, xsdtAddress: nil)
    }
    guard bytes.count >= version2Size else { throw .truncated }
    let length = Int(bytes.acpiUInt32(at: 20))
    guard length >= version2Size else { throw .badLength }
    guard length <= bytes.count else { throw .truncated }
    guard ACPI.checksumIsValid(bytes.prefix(bytes: length)) else { throw .badChecksum }
    let xsdtAddress = bytes.acpiUInt64(at: 24)
    return RSDP(
      revision: revision, rsdtAddress: rsdtAddress,
      xsdtAddress: xsdtAddress == 0 ? nil : xsdtAddress)
  }

  /// Whether the bytes start with `"RSD PTR "` (the firmware scan's first test).
  ///
  /// - Parameter bytes: candidate bytes; fewer than 8 never match.
  /// - Returns: `true` if the signature is there.
  public static func hasSignature(_ bytes: UnsafeRawBufferPointer) -> Bool {
    let expected: StaticString = "RSD PTR "
    return expected.withUTF8Buffer { utf8 in
      guard bytes.count >= utf8.count else { return false }
      for index in 0..<utf8.count where bytes[index] != utf8[index] {
        return false
      }
      return true
    }
  }
}
