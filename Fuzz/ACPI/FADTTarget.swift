// Fuzz target acpi_fadt: `FADT.parse` over arbitrary bytes, as the kernel hands it a table the
// root table lists with signature "FACP" (Kernel/Arch/x86_64/ACPIDiscovery.swift).

/// One input: the bytes as given, then with the checksums repaired.
func fuzzFADT(_ input: UnsafeRawBufferPointer) {
  checkFADT(input)
  var repaired = Array(input)
  ChecksumRepair.fixTable(&repaired)
  repaired.withUnsafeBytes(checkFADT)
}

/// Parses `bytes` and checks that an accepted FADT names a usable I/O port or none, and that
/// bytes past the table's length change nothing.
func checkFADT(_ bytes: UnsafeRawBufferPointer) {
  let parsed = outcome { () throws(ACPIError) in try FADT.parse(bytes) }
  guard case .success(let fadt) = parsed else { return }
  if let port = fadt.pmTimerPort {
    require(port != 0 && port <= 0xFFFF, "PM timer port \(port) is not an I/O port")
  }
  let length = Int(bytes.acpiUInt32(at: 4))
  let exact = outcome { () throws(ACPIError) in try FADT.parse(bytes.prefix(bytes: length)) }
  require(exact == parsed, "bytes past the length changed the FADT")
}
