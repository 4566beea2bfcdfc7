import LockstepKernel
import Testing

@Suite("MADT")
struct MADTTests {
  /// A QEMU-like MADT: four CPUs, an I/O APIC and two overrides.
  static func fourCPUs() -> [UInt8] {
    var table = MADTFixture.start()
    for id: UInt8 in 0..<4 {
      MADTFixture.localAPIC(&table, uid: id, id: id)
    }
    MADTFixture.ioAPIC(&table)
    MADTFixture.interruptOverride(&table)
    MADTFixture.interruptOverride(&table)
    return table.finished()
  }

  @Test func validFourCPUs() throws {
    let madt = try parsing(Self.fourCPUs(), MADT.parse).get()
    #expect(madt.localAPICAddress == 0xFEE0_0000)
    #expect(madt.flags == 1)
    #expect(madt.processors == (0..<4).map { processor($0) })
  }

  @Test func truncated() {
    let table = Self.fourCPUs()
    #expect(parsing(Array(table.dropLast(1)), MADT.parse) == .failure(.truncated))
    #expect(parsing(Array(table.prefix(35)), MADT.parse) == .failure(.truncated))
    #expect(parsing([], MADT.parse) == .failure(.truncated))
  }

  @Test func lyingLengthField() {
    var table = MADTFixture.start()
    MADTFixture.localAPIC(&table, uid: 0, id: 0)
    let longer = table.finished(claimedLength: table.bytes.count + 100)
    #expect(parsing(longer, MADT.parse) == .failure(.truncated))
    let tiny = table.finished(claimedLength: 20)
    #expect(parsing(tiny, MADT.parse) == .failure(.badLength))
    let noFixedFields = table.finished(claimedLength: 40)
    #expect(parsing(noFixedFields, MADT.parse) == .failure(.badLength))
  }

  @Test func bytesPastLengthAreIgnored() throws {
    let table = Self.fourCPUs() + [0, 0, 0xFF, 0xFF]
    #expect(try parsing(table, MADT.parse).get().processors.count == 4)
  }

  @Test func badChecksum() {
    var table = Self.fourCPUs()
    table[50] &+= 1
    #expect(parsing(table, MADT.parse) == .failure(.badChecksum))
  }

  @Test func badSignature() {
    var table = ACPITableBuilder(signature: "APIX")
    table.pad(to: 44)
    #expect(parsing(table.finished(), MADT.parse) == .failure(.badSignature))
  }

  @Test func zeroLengthEntryThrows() {
    var table = MADTFixture.start()
    MADTFixture.localAPIC(&table, uid: 0, id: 0)
    table.bytes += [2, 0, 0, 0, 0, 0, 0, 0]
    #expect(parsing(table.finished(), MADT.parse) == .failure(.badEntry(offset: 52)))
  }

  @Test func lengthOneEntryThrows() {
    var table = MADTFixture.start()
    table.bytes += [0x7F, 1, 0, 0]
    #expect(parsing(table.finished(), MADT.parse) == .failure(.badEntry(offset: 44)))
  }

  @Test func entryRunningPastEndThrows() {
    var table = MADTFixture.start()
    MADTFixture.localAPIC(&table, uid: 0, id: 0)
    table.bytes += [9, 16, 0, 0, 1, 0, 0, 0]  // an x2APIC entry cut in half
    #expect(parsing(table.finished(), MADT.parse) == .failure(.badEntry(offset: 52)))
  }

  @Test func strayByteAtEndThrows() {
    var table = MADTFixture.start()
    MADTFixture.localAPIC(&table, uid: 0, id: 0)
    table.bytes.append(0)
    #expect(parsing(table.finished(), MADT.parse) == .failure(.badEntry(offset: 52)))
  }

  @Test func entryTooShortForItsType() {
    var local = MADTFixture.start()
    local.bytes += [0, 6, 0, 0, 1, 0]
    #expect(parsing(local.finished(), MADT.parse) == .failure(.badEntry(offset: 44)))
    var x2 = MADTFixture.start()
    MADTFixture.ioAPIC(&x2)
    x2.bytes += [9, 8, 0, 0, 1, 1, 0, 0]
    #expect(parsing(x2.finished(), MADT.parse) == .failure(.badEntry(offset: 56)))
  }

  @Test func disabledAndOnlineCapable() throws {
    var table = MADTFixture.start()
    MADTFixture.localAPIC(&table, uid: 0, id: 0, flags: 1)
    MADTFixture.localAPIC(&table, uid: 1, id: 1, flags: 0)
    MADTFixture.localAPIC(&table, uid: 2, id: 2, flags: 2)
    MADTFixture.localAPIC(&table, uid: 3, id: 3, flags: 3)
    let madt = try parsing(table.finished(), MADT.parse).get()
    #expect(
      madt.processors == [
        processor(0), processor(1, enabled: false),
        processor(2, enabled: false, onlineCapable: true),
        processor(3, enabled: true, onlineCapable: true),
      ])
  }

  @Test func x2APICEntriesWithLargeSparseIDs() throws {
    var table = MADTFixture.start()
    MADTFixture.localAPIC(&table, uid: 0, id: 0)
    MADTFixture.x2APIC(&table, id: 300, uid: 1)
    MADTFixture.x2APIC(&table, id: 0x10000, uid: 2)
    MADTFixture.x2APIC(&table, id: 0xFFFF_FFFF, uid: 3)  // broadcast: no processor
    MADTFixture.x2APIC(&table, id: 7, uid: 0x1234_5678, flags: 0)
    let madt = try parsing(table.finished(), MADT.parse).get()
    #expect(
      madt.processors == [
        processor(0),
        processor(300, uid: 1, x2APIC: true),
        processor(0x10000, uid: 2, x2APIC: true),
        processor(7, uid: 0x1234_5678, enabled: false, x2APIC: true),
      ])
  }

  @Test func apicIDFFIsSkipped() throws {
    var table = MADTFixture.start()
    MADTFixture.localAPIC(&table, uid: 0, id: 0)
    MADTFixture.localAPIC(&table, uid: 1, id: 0xFF)
    MADTFixture.localAPIC(&table, uid: 2, id: 0xFE)
    let madt = try parsing(table.finished(), MADT.parse).get()
    #expect(madt.processors.map(\.apicID) == [APICID(0), APICID(0xFE)])
  }

  @Test func unknownTypesAreSkippedByLength() throws {
    var table = MADTFixture.start()
    MADTFixture.ioAPIC(&table)
    MADTFixture.localAPIC(&table, uid: 0, id: 0)
    MADTFixture.interruptOverride(&table)
    table.bytes += [0x80, 3, 0xAA]  // a reserved type with an odd length
    table.bytes += [0, 10, 1, 1, 1, 0, 0, 0, 0xEE, 0xEE]  // type 0, longer than 8: allowed
    let madt = try parsing(table.finished(), MADT.parse).get()
    #expect(madt.processors == [processor(0), processor(1)])
  }

  @Test func noEntries() throws {
    let madt = try parsing(MADTFixture.start().finished(), MADT.parse).get()
    #expect(madt.processors.isEmpty)
  }

  @Test func ioAPICsAndOverrides() throws {
    let madt = try parsing(Self.fourCPUs(), MADT.parse).get()
    #expect(madt.ioAPICs == [MADT.IOAPICEntry(id: 0, address: 0xFEC0_0000, gsiBase: 0)])
    #expect(madt.overrides == Array(repeating: MADT.InterruptOverride(source: 0, gsi: 2, flags: 0), count: 2))
  }

  @Test func overridesOfOtherBusesAreSkippedAndShortOnesThrow() throws {
    var table = MADTFixture.start()
    table.bytes += [2, 10, 1, 4]  // bus 1: not ISA
    table.append32(20)
    table.append16(0)
    table.bytes += [2, 10, 0, 9]  // IRQ 9 -> GSI 9, level, active low (QEMU's SCI)
    table.append32(9)
    table.append16(0b1111)
    let madt = try parsing(table.finished(), MADT.parse).get()
    #expect(madt.overrides == [MADT.InterruptOverride(source: 9, gsi: 9, flags: 0b1111)])
    var short = MADTFixture.start()
    short.bytes += [2, 8, 0, 4, 4, 0, 0, 0]
    #expect(parsing(short.finished(), MADT.parse) == .failure(.badEntry(offset: 44)))
    var shortIO = MADTFixture.start()
    shortIO.bytes += [1, 10, 0, 0, 0, 0, 0xC0, 0xFE, 0, 0]
    #expect(parsing(shortIO.finished(), MADT.parse) == .failure(.badEntry(offset: 44)))
  }

  @Test func routeOfAnISAIRQ() {
    let madt = MADT(
      localAPICAddress: 0xFEE0_0000, flags: 1, processors: [],
      overrides: [
        MADT.InterruptOverride(source: 0, gsi: 2, flags: 0),
        MADT.InterruptOverride(source: 9, gsi: 9, flags: 0b1111),
        MADT.InterruptOverride(source: 4, gsi: 20, flags: 0b0101),
      ])
    #expect(madt.route(isaIRQ: 3) == (3, false, false))
    #expect(madt.route(isaIRQ: 0) == (2, false, false))
    #expect(madt.route(isaIRQ: 9) == (9, true, true))
    #expect(madt.route(isaIRQ: 4) == (20, false, false))  // 01: active high, edge, said explicitly
  }

  /// Every prefix and every single-byte corruption of a table either parses or throws:
  /// none crashes or loops (the walk must never read out of bounds).
  @Test func fuzzedTablesNeverCrash() {
    let table = Self.fourCPUs()
    for length in 0...table.count {
      _ = parsing(Array(table.prefix(length)), MADT.parse)
    }
    for offset in 0..<table.count {
      for value: UInt8 in [0, 1, 2, 7, 0x7F, 0xFF] {
        var corrupt = table
        corrupt[offset] = value
        var fixed = ACPITableBuilder(signature: "APIC")
        fixed.bytes = corrupt
        _ = parsing(
          fixed.finished(claimedLength: Int(corrupt[4]) | Int(corrupt[5]) << 8), MADT.parse)
        _ = parsing(corrupt, MADT.parse)
      }
    }
  }
}
