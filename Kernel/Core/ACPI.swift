// ACPI table parsing over bytes: the shared error type, checksums, signatures, and bounded
// little-endian reads.
//
// The kernel maps the tables and hands their bytes over; nothing here sees an address,
// only the integers the tables store. Every read is bounds-checked against the bytes given,
// whatever lengths the tables claim. Spec: ACPI 6.5, §5.2 "ACPI System Description Tables".

/// Why an ACPI structure was rejected.
public enum ACPIError: Error, Equatable, Sendable {
  /// Fewer bytes were given than the structure needs or its length field claims.
  case truncated
  /// The signature is not the one expected.
  case badSignature
  /// The bytes do not sum to zero mod 256.
  case badChecksum
  /// A length field is too small for the structure it describes.
  case badLength
  /// A revision field names a layout this parser does not handle.
  case badRevision
  /// A table entry at this byte offset (from the table start) is malformed: its length is
  /// below 2, too short for its type, or runs past the end of the table.
  case badEntry(offset: Int)
}

/// Helpers shared by the ACPI table parsers.
public enum ACPI {
  /// Whether the bytes sum to zero modulo 256, as every ACPI checksum requires (§5.2.5.3,
  /// §5.2.6).
  ///
  /// - Parameter bytes: the checksummed bytes, checksum byte included.
  /// - Returns: `true` if the sum is 0 mod 256.
  public static func checksumIsValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var sum: UInt8 = 0
    for byte in bytes {
      sum &+= byte
    }
    return sum == 0
  }

  /// A four-character table signature as the little-endian `UInt32` stored at offset 0.
  ///
  /// - Parameter name: four ASCII characters, such as `"APIC"`.
  /// - Returns: the signature, first character in the low byte.
  public static func signature(_ name: StaticString) -> UInt32 {
    name.withUTF8Buffer { utf8 in
      precondition(utf8.count == 4, "ACPI signatures are four bytes")
      var value: UInt32 = 0
      for index in 0..<4 {
        value |= UInt32(utf8[index]) << UInt32(8 * index)
      }
      return value
    }
  }
}

extension UnsafeRawBufferPointer {
  /// Reads an unsigned little-endian integer of `size` bytes at `offset`.
  ///
  /// - Precondition: `offset + size <= count`; callers check lengths first.
  private func littleEndian(at offset: Int, size: Int) -> UInt64 {
    precondition(offset >= 0 && size <= count && offset <= count - size, "ACPI read out of bounds")
    var value: UInt64 = 0
    for index in 0..<size {
      value |= UInt64(self[offset + index]) << UInt64(8 * index)
    }
    return value
  }

  /// The byte at `offset` (bounds-checked).
  func acpiUInt8(at offset: Int) -> UInt8 {
    UInt8(littleEndian(at: offset, size: 1))
  }

  /// The little-endian `UInt32` at `offset` (bounds-checked).
  func acpiUInt32(at offset: Int) -> UInt32 {
    UInt32(littleEndian(at: offset, size: 4))
  }

  /// The little-endian `UInt64` at `offset` (bounds-checked).
  func acpiUInt64(at offset: Int) -> UInt64 {
    littleEndian(at: offset, size: 8)
  }

  /// The first `length` bytes.
  ///
  /// - Precondition: `0 <= length <= count`.
  func prefix(bytes length: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: self[0..<length])
  }
}
