// What the ACPI fuzz targets share: parse outcomes as values, and the checksum repair that
// lets mutated tables reach the code behind the checksum test.

/// Runs a throwing ACPI parser and captures the outcome, so properties can look at either.
func outcome<T>(
  _ parse: () throws(ACPIError) -> T
) -> Result<T, ACPIError> {
  Result { () throws(ACPIError) -> T in try parse() }
}

/// Checksum repair for mutated tables.
///
/// A random mutation breaks a checksum 255 times in 256, so without repair nearly every input
/// stops at the checksum test and the fields behind it are never reached. Targets parse the
/// input as given (the checksum path) and then a repaired copy (everything behind it).
enum ChecksumRepair {
  /// Sets `bytes[base + index]` so that `bytes[base ..< base + count]` sums to zero mod 256.
  static func fix(_ bytes: inout [UInt8], base: Int = 0, index: Int, count: Int) {
    guard index < count, base + count <= bytes.count else { return }
    bytes[base + index] = 0
    var sum: UInt8 = 0
    for offset in base..<(base + count) {
      sum &+= bytes[offset]
    }
    bytes[base + index] = 0 &- sum
  }

  /// Repairs a system description table at `base`: the checksum at offset 9 over the bytes
  /// its length field covers (those present, if it claims more).
  static func fixTable(_ bytes: inout [UInt8], base: Int = 0) {
    guard bytes.count - base >= SDTHeader.size else { return }
    let length = Int(littleEndian32(bytes, at: base + 4))
    fix(&bytes, base: base, index: 9, count: min(length, bytes.count - base))
  }

  /// Repairs an RSDP at `base`: the 1.0 checksum over 20 bytes, then from revision 2 the
  /// extended checksum (offset 32) over `length` bytes when they are present. Byte 32 lies
  /// past the first 20, so the second repair keeps the first.
  static func fixRSDP(_ bytes: inout [UInt8], base: Int = 0) {
    fix(&bytes, base: base, index: 8, count: RSDP.version1Size)
    guard bytes.count - base >= RSDP.version2Size, bytes[base + 15] >= 2 else { return }
    let length = Int(littleEndian32(bytes, at: base + 20))
    guard length >= RSDP.version2Size else { return }
    fix(&bytes, base: base, index: 32, count: length)
  }

  /// The little-endian `UInt32` at `offset`.
  static func littleEndian32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
    (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << UInt32(8 * $1) }
  }
}
