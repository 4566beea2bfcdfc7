import LockstepKernel

/// Builds ACPI table bytes for tests: a 36-byte header, a body appended piece by piece, and
/// `finished()` to fix the length field and the checksum.
struct ACPITableBuilder {
  var bytes: [UInt8]

  /// Starts a table with a header carrying `signature` and `revision`.
  init(signature: String, revision: UInt8 = 1) {
    bytes = Array(signature.utf8)
    precondition(bytes.count == 4)
    bytes += [0, 0, 0, 0, revision, 0]  // length, revision, checksum
    bytes += Array("LOCKST".utf8) + Array("LOCKSTEP".utf8)  // OEM ID, OEM table ID
    bytes += [1, 0, 0, 0] + Array("SWFT".utf8) + [1, 0, 0, 0]  // OEM rev, creator, creator rev
  }

  mutating func append8(_ value: UInt8) { bytes.append(value) }
  mutating func append16(_ value: UInt16) { appendLittleEndian(UInt64(value), size: 2) }
  mutating func append32(_ value: UInt32) { appendLittleEndian(UInt64(value), size: 4) }
  mutating func append64(_ value: UInt64) { appendLittleEndian(value, size: 8) }

  /// Appends `size` little-endian bytes of `value`.
  mutating func appendLittleEndian(_ value: UInt64, size: Int) {
    for index in 0..<size {
      bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(8 * index)))
    }
  }

  /// Pads with zeros up to `count` bytes.
  mutating func pad(to count: Int) {
    while bytes.count < count { bytes.append(0) }
  }

  /// Overwrites `size` little-endian bytes at `offset`.
  mutating func set(_ value: UInt64, at offset: Int, size: Int) {
    for index in 0..<size {
      bytes[offset + index] = UInt8(truncatingIfNeeded: value >> UInt64(8 * index))
    }
  }

  /// The table with its length field (the real length unless `claimedLength` is given) and a
  /// checksum that makes the first `length` bytes (at most all of them) sum to zero.
  func finished(claimedLength: Int? = nil) -> [UInt8] {
    var table = ACPITableBuilder(bytes: bytes)
    let length = claimedLength ?? bytes.count
    table.set(UInt64(length), at: 4, size: 4)
    table.bytes[9] = 0
    let covered = table.bytes.prefix(min(length, table.bytes.count))
    table.bytes[9] = 0 &- covered.reduce(0, &+)
    return table.bytes
  }

  private init(bytes: [UInt8]) { self.bytes = bytes }
}

/// MADT fixtures.
enum MADTFixture {
  /// An MADT header and fixed fields, ready for entries.
  static func start(localAPICAddress: UInt32 = 0xFEE0_0000, flags: UInt32 = 1) -> ACPITableBuilder {
    var table = ACPITableBuilder(signature: "APIC", revision: 5)
    table.append32(localAPICAddress)
    table.append32(flags)
    return table
  }

  /// Appends a type 0 Processor Local APIC entry.
  static func localAPIC(_ table: inout ACPITableBuilder, uid: UInt8, id: UInt8, flags: UInt32 = 1) {
    table.bytes += [0, 8, uid, id]
    table.append32(flags)
  }

  /// Appends a type 9 Processor Local x2APIC entry.
  static func x2APIC(_ table: inout ACPITableBuilder, id: UInt32, uid: UInt32, flags: UInt32 = 1) {
    table.bytes += [9, 16, 0, 0]
    table.append32(id)
    table.append32(flags)
    table.append32(uid)
  }

  /// Appends a type 1 I/O APIC entry (12 bytes).
  static func ioAPIC(_ table: inout ACPITableBuilder) {
    table.bytes += [1, 12, 0, 0]
    table.append32(0xFEC0_0000)
    table.append32(0)
  }

  /// Appends a type 2 Interrupt Source Override entry (10 bytes).
  static func interruptOverride(_ table: inout ACPITableBuilder) {
    table.bytes += [2, 10, 0, 0]
    table.append32(2)
    table.append16(0)
  }
}

/// Runs a throwing parser over bytes and captures the outcome.
func parsing<T>(
  _ bytes: [UInt8], _ parse: (UnsafeRawBufferPointer) throws(ACPIError) -> T
) -> Result<T, ACPIError> {
  bytes.withUnsafeBytes { buffer in
    Result { () throws(ACPIError) -> T in try parse(buffer) }
  }
}

/// An enabled processor with the given APIC ID, as the MADT parser reports it.
func processor(
  _ id: UInt32, uid: UInt32? = nil, enabled: Bool = true, onlineCapable: Bool = false,
  x2APIC: Bool = false
) -> MADT.Processor {
  MADT.Processor(
    apicID: APICID(id), processorUID: uid ?? id, isEnabled: enabled,
    isOnlineCapable: onlineCapable, isX2APICEntry: x2APIC)
}
