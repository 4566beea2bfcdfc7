import LockstepKernel
import Testing

@Suite("CPUTable")
struct CPUTableTests {
  /// The APIC IDs of the table's CPUs, in CPU order.
  static func ids(_ table: CPUTable) -> [UInt32] {
    table.entries.map(\.apicID.rawValue)
  }

  /// Checks the dense-numbering invariant.
  static func isDense(_ table: CPUTable) -> Bool {
    table.entries.indices.allSatisfy { table.entries[$0].cpu == CPUIndex($0) }
  }

  @Test func bootCPUFirstInMADT() {
    let table = CPUTable.build(
      processors: [0, 1, 2, 3].map { processor($0) }, bootAPICID: APICID(0), limit: 4)
    #expect(Self.ids(table) == [0, 1, 2, 3])
    #expect(Self.isDense(table))
    #expect(table.diagnostics.isEmpty)
    #expect(table.count == 4)
  }

  @Test func xAPICModeLeavesOutIDsItCannotAddress() {
    let table = CPUTable.build(
      processors: [0, 1, 254, 255, 256, 300].map { processor($0) }, bootAPICID: APICID(0), limit: 8,
      xAPICOnly: true)
    #expect(Self.ids(table) == [0, 1, 254])
    #expect(
      table.diagnostics == [
        .notAddressable(APICID(255)), .notAddressable(APICID(256)), .notAddressable(APICID(300)),
      ])
    let x2APIC = CPUTable.build(
      processors: [0, 1, 254, 255, 256, 300].map { processor($0) }, bootAPICID: APICID(0), limit: 8)
    #expect(Self.ids(x2APIC) == [0, 1, 254, 255, 256, 300])
  }

  @Test func bootCPUNotFirstGetsZero() {
    let table = CPUTable.build(
      processors: [2, 6, 0, 4].map { processor($0) }, bootAPICID: APICID(6), limit: 8)
    #expect(Self.ids(table) == [6, 2, 0, 4])
    #expect(Self.isDense(table))
    #expect(table.cpu(for: APICID(6)) == CPUIndex.boot)
    #expect(table.cpu(for: APICID(0)) == CPUIndex(2))
    #expect(table.diagnostics.isEmpty)
  }

  @Test func bootCPUMissingFromMADT() {
    let table = CPUTable.build(
      processors: [2, 4].map { processor($0) }, bootAPICID: APICID(0), limit: 8)
    #expect(Self.ids(table) == [0, 2, 4])
    #expect(table.diagnostics == [.bootCPUMissingFromMADT(APICID(0))])
  }

  @Test func duplicatesAreSkipped() {
    let table = CPUTable.build(
      processors: [0, 2, 2, 4, 0].map { processor($0) }, bootAPICID: APICID(0), limit: 8)
    #expect(Self.ids(table) == [0, 2, 4])
    #expect(table.diagnostics == [.duplicate(APICID(2)), .duplicate(APICID(0))])
  }

  @Test func disabledProcessorsAreSkipped() {
    let processors = [
      processor(0), processor(1, enabled: false), processor(2, enabled: false, onlineCapable: true),
      processor(3),
    ]
    let table = CPUTable.build(processors: processors, bootAPICID: APICID(0), limit: 8)
    #expect(Self.ids(table) == [0, 3])
    #expect(
      table.diagnostics == [
        .notEnabled(APICID(1), onlineCapable: false), .notEnabled(APICID(2), onlineCapable: true),
      ])
  }

  @Test func limitLeavesTheRestOut() {
    let table = CPUTable.build(
      processors: [0, 2, 4, 6].map { processor($0) }, bootAPICID: APICID(4), limit: 2)
    #expect(Self.ids(table) == [4, 0])
    #expect(table.diagnostics == [.overLimit(APICID(2)), .overLimit(APICID(6))])
  }

  @Test func limitOneIsBootOnly() {
    let table = CPUTable.build(
      processors: [0, 1].map { processor($0) }, bootAPICID: APICID(1), limit: 1)
    #expect(Self.ids(table) == [1])
    #expect(table.diagnostics == [.overLimit(APICID(0))])
  }

  @Test func moreThanMaxCPUs() {
    let processors = (0..<600).map { processor(UInt32($0)) }
    let table = CPUTable.build(processors: processors, bootAPICID: APICID(0), limit: 1000)
    #expect(table.count == maxCPUs)
    #expect(Self.isDense(table))
    #expect(table.diagnostics == (512..<600).map { .tooMany(APICID(UInt32($0))) })
  }

  @Test func sparseIDs() {
    let processors = [processor(0), processor(300, x2APIC: true), processor(0x10000, x2APIC: true)]
    let table = CPUTable.build(processors: processors, bootAPICID: APICID(0), limit: 3)
    #expect(table.apicID(of: CPUIndex(1)) == APICID(300))
    #expect(table.apicID(of: CPUIndex(2)) == APICID(0x10000))
    #expect(table.cpu(for: APICID(0x10000)) == CPUIndex(2))
    #expect(table.cpu(for: APICID(1)) == nil)
  }

  @Test func bootOnly() {
    let table = CPUTable.bootOnly(APICID(3))
    #expect(table.entries == [CPUTable.Entry(cpu: .boot, apicID: APICID(3))])
    #expect(table.diagnostics.isEmpty)
    #expect(table.apicID(of: .boot) == APICID(3))
  }

  @Test func fromMADTBytesWithBootLimits() throws {
    var bytes = MADTFixture.start()
    MADTFixture.localAPIC(&bytes, uid: 0, id: 0)
    MADTFixture.localAPIC(&bytes, uid: 1, id: 2)
    MADTFixture.x2APIC(&bytes, id: 300, uid: 2)
    MADTFixture.localAPIC(&bytes, uid: 3, id: 4, flags: 0)
    let madt = try parsing(bytes.finished(), MADT.parse).get()
    let limits = Array("nr_cpus=2".utf8).withUnsafeBytes { BootParameters.parse($0) }
      .limits(presentCPUs: madt.processors.filter(\.isEnabled).count)
    let table = CPUTable.build(
      processors: madt.processors, bootAPICID: APICID(2), limit: limits.possible)
    #expect(Self.ids(table) == [2, 0])
    #expect(
      table.diagnostics == [.overLimit(APICID(300)), .notEnabled(APICID(4), onlineCapable: false)])
  }
}
