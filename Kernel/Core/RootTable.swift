// The root tables that list every other ACPI table: the RSDT (32-bit addresses) and the
// XSDT (64-bit addresses). ACPI 6.5 §5.2.7 "Root System Description Table (RSDT)" and
// §5.2.8 "Extended System Description Table (XSDT)".

/// Reads the table addresses listed by the RSDT or the XSDT.
///
/// Linux: acpi_tb_parse_root_table()
public enum RootTable {
  /// Entry size of the RSDT: 32-bit physical addresses.
  public static let rsdtEntrySize = 4
  /// Entry size of the XSDT: 64-bit physical addresses.
  public static let xsdtEntrySize = 8

  /// Validates a root table and returns the addresses it lists, in table order.
  ///
  /// The header is validated with signature `"RSDT"` for 4-byte entries and `"XSDT"` for
  /// 8-byte entries. Zero addresses are skipped, and trailing bytes too few for a whole
  /// entry are ignored, both as ACPICA does.
  /// - Parameters:
  ///   - table: the root table's bytes, at least its `length`.
  ///   - entrySize: 4 (RSDT) or 8 (XSDT).
  /// - Returns: the physical addresses of the listed tables.
  /// - Throws: the errors of `SDTHeader.validate(_:signature:)`.
  public static func entries(
    _ table: UnsafeRawBufferPointer, entrySize: Int
  ) throws(ACPIError) -> [UInt64] {
    precondition(entrySize == rsdtEntrySize || entrySize == xsdtEntrySize, "entry size 4 or 8")
    let signature = ACPI.signature(entrySize == rsdtEntrySize ? "RSDT" : "XSDT")
    let (_, bytes) = try SDTHeader.validatedTable(table, signature: signature)
    var addresses: [UInt64] = []
    var offset = SDTHeader.size
    while offset + entrySize <= bytes.count {
      let address =
        entrySize == rsdtEntrySize
        ? UInt64(bytes.acpiUInt32(at: offset)) : bytes.acpiUInt64(at: offset)
      if address != 0 {
        addresses.append(address)
      }
      offset += entrySize
    }
    return addresses
  }
}
