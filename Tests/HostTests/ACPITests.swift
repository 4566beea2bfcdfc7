import LockstepKernel
import Testing

/// RSDP fixtures (ACPI 6.5 §5.2.5.3).
enum RSDPFixture {
  /// A revision 0 RSDP (20 bytes) with a correct checksum.
  static func version1(rsdt: UInt32) -> [UInt8] {
    var bytes = Array("RSD PTR ".utf8) + [0] + Array("LOCKST".utf8) + [0]
    bytes += littleEndian(UInt64(rsdt), size: 4)
    bytes[8] = 0 &- bytes.reduce(0, &+)
    return bytes
  }

  /// A revision 2 RSDP (36 bytes) with both checksums correct.
  static func version2(rsdt: UInt32, xsdt: UInt64, length: UInt32 = 36) -> [UInt8] {
    var bytes = version1(rsdt: rsdt)
    bytes[15] = 2
    bytes += littleEndian(UInt64(length), size: 4) + littleEndian(xsdt, size: 8) + [0, 0, 0, 0]
    bytes[8] = 0
    bytes[8] = 0 &- bytes.prefix(20).reduce(0, &+)
    bytes[32] = 0 &- bytes.reduce(0, &+)
    return bytes
  }

  static func littleEndian(_ value: UInt64, size: Int) -> [UInt8] {
    (0..<size).map { UInt8(truncatingIfNeeded: value >> UInt64(8 * $0)) }
  }
}

@Suite("ACPI")
struct ACPITests {
  @Test func checksum() {
    #expect([UInt8]().withUnsafeBytes(ACPI.checksumIsValid))
    #expect([1, 2, 0xFD].withUnsafeBytes(ACPI.checksumIsValid))
    #expect(![1, 2, 0xFC].withUnsafeBytes(ACPI.checksumIsValid))
    #expect([0x80, 0x80].withUnsafeBytes(ACPI.checksumIsValid))
  }

  @Test func signatures() {
    #expect(ACPI.signature("APIC") == 0x4349_5041)
    #expect(ACPI.signature("FACP") == 0x5043_4146)
    let stored = Array("XSDT".utf8)
    #expect(stored.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } == ACPI.signature("XSDT"))
  }

  @Test func rsdpRevision0() throws {
    let rsdp = try parsing(RSDPFixture.version1(rsdt: 0x07FE_1234), RSDP.parse).get()
    #expect(rsdp == RSDP(revision: 0, rsdtAddress: 0x07FE_1234, xsdtAddress: nil))
  }

  @Test func rsdpRevision0Errors() {
    var bad = RSDPFixture.version1(rsdt: 0x1000)
    bad[17] &+= 1
    #expect(parsing(bad, RSDP.parse) == .failure(.badChecksum))
    var wrong = RSDPFixture.version1(rsdt: 0x1000)
    wrong[3] = UInt8(ascii: "X")
    #expect(parsing(wrong, RSDP.parse) == .failure(.badSignature))
    let short = Array(RSDPFixture.version1(rsdt: 0x1000).prefix(19))
    #expect(parsing(short, RSDP.parse) == .failure(.truncated))
  }

  @Test func rsdpRevision2() throws {
    let bytes = RSDPFixture.version2(rsdt: 0x1000, xsdt: 0x1_2345_6000)
    let rsdp = try parsing(bytes, RSDP.parse).get()
    #expect(rsdp == RSDP(revision: 2, rsdtAddress: 0x1000, xsdtAddress: 0x1_2345_6000))
    let noXSDT = try parsing(RSDPFixture.version2(rsdt: 0x1000, xsdt: 0), RSDP.parse).get()
    #expect(noXSDT.xsdtAddress == nil)
  }

  @Test func rsdpRevision2Errors() {
    var extended = RSDPFixture.version2(rsdt: 0x1000, xsdt: 0x2000)
    extended[25] &+= 1  // covered by the extended checksum only
    #expect(parsing(extended, RSDP.parse) == .failure(.badChecksum))
    var first = RSDPFixture.version2(rsdt: 0x1000, xsdt: 0x2000)
    first[16] &+= 1
    first[33] &-= 1  // extended sum still zero, first 20 bytes not
    #expect(parsing(first, RSDP.parse) == .failure(.badChecksum))
    let short = Array(RSDPFixture.version2(rsdt: 0x1000, xsdt: 0x2000).prefix(35))
    #expect(parsing(short, RSDP.parse) == .failure(.truncated))
    let long = RSDPFixture.version2(rsdt: 0x1000, xsdt: 0x2000, length: 40)
    #expect(parsing(long, RSDP.parse) == .failure(.truncated))
    let small = RSDPFixture.version2(rsdt: 0x1000, xsdt: 0x2000, length: 20)
    #expect(parsing(small, RSDP.parse) == .failure(.badLength))
  }

  @Test func sdtHeader() throws {
    var table = ACPITableBuilder(signature: "HPET", revision: 3)
    table.pad(to: 56)
    let bytes = table.finished()
    let header = try parsing(bytes, SDTHeader.parse).get()
    #expect(header == SDTHeader(signature: ACPI.signature("HPET"), length: 56, revision: 3))
    #expect(
      try parsing(bytes) { b throws(ACPIError) in
        try SDTHeader.validate(b, signature: ACPI.signature("HPET"))
      }.get() == header)
    #expect(parsing(Array(bytes.prefix(35)), SDTHeader.parse) == .failure(.truncated))
    #expect(SDTHeader.size == 36)
  }

  /// An RSDT or XSDT listing `addresses`.
  static func rootTable(_ signature: String, entrySize: Int, _ addresses: [UInt64]) -> [UInt8] {
    var table = ACPITableBuilder(signature: signature)
    for address in addresses {
      table.appendLittleEndian(address, size: entrySize)
    }
    return table.finished()
  }

  @Test func rsdtEntries() throws {
    let bytes = Self.rootTable("RSDT", entrySize: 4, [0x7FE_0000, 0, 0x7FE_1000])
    let entries = try parsing(bytes) { b throws(ACPIError) in
      try RootTable.entries(b, entrySize: 4)
    }.get()
    #expect(entries == [0x7FE_0000, 0x7FE_1000])
  }

  @Test func xsdtEntries() throws {
    let bytes = Self.rootTable("XSDT", entrySize: 8, [0x1_0000_0000, 0x7FE_1000])
    let entries = try parsing(bytes) { b throws(ACPIError) in
      try RootTable.entries(b, entrySize: 8)
    }.get()
    #expect(entries == [0x1_0000_0000, 0x7FE_1000])
  }

  @Test func rootTableErrors() {
    let xsdt = Self.rootTable("XSDT", entrySize: 8, [0x1000])
    let asRSDT = parsing(xsdt) { b throws(ACPIError) in try RootTable.entries(b, entrySize: 4) }
    #expect(asRSDT == .failure(.badSignature))
    var corrupt = xsdt
    corrupt[40] &+= 1
    let bad = parsing(corrupt) { b throws(ACPIError) in try RootTable.entries(b, entrySize: 8) }
    #expect(bad == .failure(.badChecksum))
    var partial = ACPITableBuilder(signature: "RSDT")
    partial.append32(0x1000)
    partial.bytes += [0x20, 0x00]  // half an entry: ignored
    let entries = parsing(partial.finished()) { b throws(ACPIError) in
      try RootTable.entries(b, entrySize: 4)
    }
    #expect(entries == .success([0x1000]))
  }

  /// An FADT of `length` bytes with the given PM timer fields.
  static func fadt(
    length: Int, port: UInt32, flags: UInt32, extended: (space: UInt8, address: UInt64)? = nil
  ) -> [UInt8] {
    var table = ACPITableBuilder(signature: "FACP", revision: 6)
    table.pad(to: length)
    if length >= 80 { table.set(UInt64(port), at: 76, size: 4) }
    if length >= 116 { table.set(UInt64(flags), at: 112, size: 4) }
    if let extended {
      table.bytes[208] = extended.space
      table.bytes[209] = 32  // register bit width
      table.set(extended.address, at: 212, size: 8)
    }
    return table.finished()
  }

  @Test func fadtLegacyTimer() throws {
    let fadt = try parsing(Self.fadt(length: 116, port: 0x608, flags: 1 << 8), FADT.parse).get()
    #expect(fadt == FADT(pmTimerPort: 0x608, pmTimerIs32Bit: true))
    let narrow = try parsing(Self.fadt(length: 244, port: 0xB008, flags: 0), FADT.parse).get()
    #expect(narrow == FADT(pmTimerPort: 0xB008, pmTimerIs32Bit: false))
  }

  @Test func fadtPrefersExtendedTimer() throws {
    let bytes = Self.fadt(length: 276, port: 0x608, flags: 1 << 8, extended: (1, 0x1808))
    let fadt = try parsing(bytes, FADT.parse).get()
    #expect(fadt == FADT(pmTimerPort: 0x1808, pmTimerIs32Bit: true))
  }

  @Test func fadtIgnoresUnusableExtendedTimer() throws {
    let memory = Self.fadt(length: 276, port: 0x608, flags: 0, extended: (0, 0xFED0_0000))
    #expect(try parsing(memory, FADT.parse).get().pmTimerPort == 0x608)
    let zero = Self.fadt(length: 276, port: 0x608, flags: 0, extended: (1, 0))
    #expect(try parsing(zero, FADT.parse).get().pmTimerPort == 0x608)
    let tooShort = Self.fadt(length: 219, port: 0x608, flags: 0)
    #expect(try parsing(tooShort, FADT.parse).get().pmTimerPort == 0x608)
  }

  @Test func fadtWithoutTimer() throws {
    let none = try parsing(Self.fadt(length: 244, port: 0, flags: 0), FADT.parse).get()
    #expect(none == FADT(pmTimerPort: nil, pmTimerIs32Bit: false))
    let short = try parsing(Self.fadt(length: 40, port: 0, flags: 0), FADT.parse).get()
    #expect(short.pmTimerPort == nil)
  }

  @Test func fadtErrors() {
    var bytes = Self.fadt(length: 244, port: 0x608, flags: 0)
    bytes[76] &+= 1
    #expect(parsing(bytes, FADT.parse) == .failure(.badChecksum))
    #expect(parsing(MADTTests.fourCPUs(), FADT.parse) == .failure(.badSignature))
  }
}
