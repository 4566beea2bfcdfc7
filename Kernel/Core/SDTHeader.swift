// The header every ACPI system description table starts with.
// ACPI 6.5 §5.2.6 "System Description Table Header".

/// The 36-byte System Description Table header.
///
/// Layout (§5.2.6, Table 5.4): signature at 0 (4 bytes), length at 4 (u32, the whole table,
/// header included), revision at 8, checksum at 9 (the whole table sums to zero), then OEM
/// ID, OEM table ID, OEM revision, creator ID and creator revision, ending at 36.
/// Linux: struct acpi_table_header
public struct SDTHeader: Equatable, Sendable {
  /// The table's signature as stored: see `ACPI.signature(_:)`.
  public var signature: UInt32
  /// The table's length in bytes, header included.
  public var length: UInt32
  /// The table's revision (its layout version, per table type).
  public var revision: UInt8

  /// Size of the header in bytes.
  public static let size = 36

  /// Creates a header value.
  ///
  /// - Parameters:
  ///   - signature: the signature as stored.
  ///   - length: the table length.
  ///   - revision: the table revision.
  public init(signature: UInt32, length: UInt32, revision: UInt8) {
    self.signature = signature
    self.length = length
    self.revision = revision
  }

  /// Reads a header without validating the table it belongs to.
  ///
  /// Use it to learn `length` before mapping the whole table.
  /// - Parameter bytes: at least the 36 header bytes.
  /// - Returns: the header.
  /// - Throws: `.truncated` if fewer than 36 bytes are given.
  public static func parse(_ bytes: UnsafeRawBufferPointer) throws(ACPIError) -> SDTHeader {
    guard bytes.count >= size else { throw .truncated }
    return SDTHeader(
      signature: bytes.acpiUInt32(at: 0), length: bytes.acpiUInt32(at: 4),
      revision: bytes.acpiUInt8(at: 8))
  }

  /// Validates a whole table: its signature, its length and its checksum.
  ///
  /// Linux: acpi_tb_verify_checksum() plus the signature check of acpi_get_table().
  /// - Parameters:
  ///   - table: the table's bytes, at least `length` of them; bytes past `length` (such as
  ///     the rest of a mapped page) are ignored.
  ///   - signature: the expected signature, from `ACPI.signature(_:)`.
  /// - Returns: the header.
  /// - Throws: `.truncated` if fewer than 36 or fewer than `length` bytes are given,
  ///   `.badSignature`, `.badLength` if `length` < 36, `.badChecksum`.
  public static func validate(
    _ table: UnsafeRawBufferPointer, signature: UInt32
  ) throws(ACPIError) -> SDTHeader {
    let header = try parse(table)
    guard header.signature == signature else { throw .badSignature }
    guard header.length >= size else { throw .badLength }
    guard header.length <= table.count else { throw .truncated }
    guard ACPI.checksumIsValid(table.prefix(bytes: Int(header.length))) else {
      throw .badChecksum
    }
    return header
  }

  /// Validates a table and returns exactly its `length` bytes.
  ///
  /// - Parameters:
  ///   - table: the table's bytes, at least `length` of them.
  ///   - signature: the expected signature.
  /// - Returns: the header and the table cut to `length` bytes.
  /// - Throws: as `validate(_:signature:)`.
  static func validatedTable(
    _ table: UnsafeRawBufferPointer, signature: UInt32
  ) throws(ACPIError) -> (header: SDTHeader, bytes: UnsafeRawBufferPointer) {
    let header = try validate(table, signature: signature)
    return (header, table.prefix(bytes: Int(header.length)))
  }
}
