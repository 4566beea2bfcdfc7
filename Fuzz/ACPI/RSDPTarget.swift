// Fuzz target acpi_rsdp: `RSDP.hasSignature` and `RSDP.parse` over arbitrary bytes, as the
// kernel's scan of the EBDA and BIOS area feeds them (Kernel/Arch/x86_64/ACPIDiscovery.swift
// hands over up to 36 bytes at each 16-byte boundary).

/// One input: the bytes as given, then with the checksums repaired.
func fuzzRSDP(_ input: UnsafeRawBufferPointer) {
  checkRSDP(input)
  var repaired = Array(input)
  ChecksumRepair.fixRSDP(&repaired)
  repaired.withUnsafeBytes(checkRSDP)
}

/// Parses `bytes` and checks that an accepted RSDP says what its bytes say.
func checkRSDP(_ bytes: UnsafeRawBufferPointer) {
  guard case .success(let rsdp) = outcome({ () throws(ACPIError) in try RSDP.parse(bytes) })
  else { return }
  require(RSDP.hasSignature(bytes), "accepted without the signature")
  require(ACPI.checksumIsValid(bytes.prefix(bytes: RSDP.version1Size)), "1.0 checksum")
  require(rsdp.revision == bytes[15], "revision is byte 15")
  require(rsdp.rsdtAddress == bytes.acpiUInt32(at: 16), "RSDT address is bytes 16..<20")
  if rsdp.revision < 2 {
    require(rsdp.xsdtAddress == nil, "an XSDT before revision 2")
    return
  }
  let length = Int(bytes.acpiUInt32(at: 20))
  require(length >= RSDP.version2Size && length <= bytes.count, "length within the bytes")
  require(ACPI.checksumIsValid(bytes.prefix(bytes: length)), "extended checksum")
  require(rsdp.xsdtAddress != 0, "a zero XSDT address reported")
  require((rsdp.xsdtAddress ?? 0) == bytes.acpiUInt64(at: 24), "XSDT address is bytes 24..<32")
}
