// Fuzz target acpi_chain: the whole walk the kernel makes at boot, RSDP -> RSDT or XSDT ->
// MADT and FADT, over a fuzzed "physical memory" image.
//
// The input is memory from address 0 up; every address a table stores is resolved against
// it and anything outside it is refused. The walk mirrors Kernel/Arch/x86_64/ACPIDiscovery
// .swift, which cannot be built on the host (it reads raw addresses): the RSDP scan on 16-byte
// boundaries with at most 36 bytes, the header read before the whole table, the 1 MiB cap on
// a table's length, the signature each step expects. It feeds the parsers through the same
// public entry points as the kernel does.
// - Note: The bounds here are computed without overflow. ACPIDiscovery's own `address + 36`
//   is not (a stored address within 36 of 2^64 traps it), which this target cannot reach.

/// One input: the walk as the bytes are, then again repairing each checksum before its test.
func fuzzChain(_ input: UnsafeRawBufferPointer) {
  var memory = Memory(bytes: Array(input))
  memory.discover()
  memory.repairsChecksums = true
  memory.discover()
}

/// The fuzz input as physical memory, and the walk over it.
struct Memory {
  var bytes: [UInt8]
  /// Whether each structure's checksum is repaired just before it is validated, so that the
  /// walk goes past the checksum tests (see `ChecksumRepair`).
  var repairsChecksums = false

  /// ACPIDiscovery's cap on a table's length.
  static let maximumTableLength: UInt32 = 1 << 20

  /// Finds the RSDP, its root table and the MADT and FADT that table lists.
  mutating func discover() {
    guard let rsdp = findRSDP() else { return }
    let useXSDT = rsdp.xsdtAddress != nil
    let rootAddress = rsdp.xsdtAddress ?? UInt64(rsdp.rsdtAddress)
    let entrySize = useXSDT ? RootTable.xsdtEntrySize : RootTable.rsdtEntrySize
    let entries = table(at: rootAddress, signature: useXSDT ? "XSDT" : "RSDT") {
      table throws(ACPIError) in try RootTable.entries(table, entrySize: entrySize)
    }
    guard let entries else { return }
    for address in entries {
      guard let header = header(at: address) else { continue }
      if header.signature == ACPI.signature("APIC") {
        _ = table(at: address, signature: "APIC") { table throws(ACPIError) in
          try MADT.parse(table)
        }
      } else if header.signature == ACPI.signature("FACP") {
        _ = table(at: address, signature: "FACP") { table throws(ACPIError) in
          try FADT.parse(table)
        }
      }
    }
  }

  /// The first valid RSDP on a 16-byte boundary, given at most 36 bytes as the kernel's scan.
  mutating func findRSDP() -> RSDP? {
    var address = 0
    while address + RSDP.version1Size <= bytes.count {
      let count = min(RSDP.version2Size, bytes.count - address)
      let candidate = Array(bytes[address..<(address + count)])
      if repairsChecksums, candidate.withUnsafeBytes(RSDP.hasSignature) {
        ChecksumRepair.fixRSDP(&bytes, base: address)
      }
      let found = bytes[address..<(address + count)].withUnsafeBytes { window in
        RSDP.hasSignature(window) ? try? RSDP.parse(window) : nil
      }
      if let found { return found }
      address += 16
    }
    return nil
  }

  /// Whether `count` bytes at `address` lie inside the image (without overflow).
  func contains(_ address: UInt64, count: Int) -> Bool {
    address < UInt64(bytes.count) && UInt64(bytes.count) - address >= UInt64(count)
  }

  /// The header at `address`, or nil if it is not wholly inside the image.
  func header(at address: UInt64) -> SDTHeader? {
    guard address != 0, contains(address, count: SDTHeader.size) else { return nil }
    let start = Int(address)
    return bytes[start..<(start + SDTHeader.size)].withUnsafeBytes { try? SDTHeader.parse($0) }
  }

  /// Validates the table at `address` and hands exactly its `length` bytes to `parse`.
  /// - Returns: what `parse` returned, or nil if the table or the parse was refused.
  mutating func table<T>(
    at address: UInt64, signature: StaticString,
    _ parse: (UnsafeRawBufferPointer) throws(ACPIError) -> T
  ) -> T? {
    guard let header = header(at: address), header.length <= Self.maximumTableLength,
      contains(address, count: Int(header.length))
    else { return nil }
    let start = Int(address)
    if repairsChecksums { ChecksumRepair.fixTable(&bytes, base: start) }
    let slice = bytes[start..<(start + Int(header.length))]
    return slice.withUnsafeBytes { table -> T? in
      let expected = ACPI.signature(signature)
      guard (try? SDTHeader.validate(table, signature: expected)) != nil else { return nil }
      let result = outcome { () throws(ACPIError) -> T in try parse(table) }
      return try? result.get()
    }
  }
}
