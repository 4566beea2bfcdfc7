// Fuzz target acpi_sdt: `SDTHeader.parse`, `SDTHeader.validate` and `RootTable.entries` (the
// RSDT and XSDT) over arbitrary bytes, as the kernel reads a header to learn a table's length
// and then validates the whole table (Kernel/Arch/x86_64/ACPIDiscovery.swift).

/// One input: the bytes as given, then with the checksums repaired.
func fuzzSDT(_ input: UnsafeRawBufferPointer) {
  checkTable(input)
  var repaired = Array(input)
  ChecksumRepair.fixTable(&repaired)
  repaired.withUnsafeBytes(checkTable)
}

/// Runs the header and root-table parsers over `bytes` and checks what they accept.
func checkTable(_ bytes: UnsafeRawBufferPointer) {
  let parsed = outcome { () throws(ACPIError) in try SDTHeader.parse(bytes) }
  guard case .success(let header) = parsed else {
    require(bytes.count < SDTHeader.size, "a whole header refused")
    return
  }
  // The table's own signature, so that validation gets past the signature test.
  let validated = outcome { () throws(ACPIError) in
    try SDTHeader.validate(bytes, signature: header.signature)
  }
  if case .success(let same) = validated {
    require(same == header, "validate and parse disagree")
    let length = Int(header.length)
    require(length >= SDTHeader.size && length <= bytes.count, "length within the bytes")
    require(ACPI.checksumIsValid(bytes.prefix(bytes: length)), "checksum")
  }
  for entrySize in [RootTable.rsdtEntrySize, RootTable.xsdtEntrySize] {
    checkRootTable(bytes, entrySize: entrySize)
  }
}

/// Checks that a root table's addresses are its whole entries, zeros left out, and that
/// bytes past its length change nothing.
func checkRootTable(_ bytes: UnsafeRawBufferPointer, entrySize: Int) {
  let entries = outcome { () throws(ACPIError) in
    try RootTable.entries(bytes, entrySize: entrySize)
  }
  guard case .success(let addresses) = entries else { return }
  let length = Int(bytes.acpiUInt32(at: 4))
  var expected: [UInt64] = []
  var offset = SDTHeader.size
  while offset + entrySize <= length {
    var address: UInt64 = 0
    for index in 0..<entrySize {
      address |= UInt64(bytes[offset + index]) << UInt64(8 * index)
    }
    if address != 0 { expected.append(address) }
    offset += entrySize
  }
  require(addresses == expected, "root table entries differ from the table's bytes")
  let exact = outcome { () throws(ACPIError) in
    try RootTable.entries(bytes.prefix(bytes: length), entrySize: entrySize)
  }
  require(exact == entries, "bytes past the length changed the entries")
}
