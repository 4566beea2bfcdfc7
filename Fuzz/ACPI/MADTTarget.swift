// Fuzz target acpi_madt: `MADT.parse` over arbitrary bytes, as the kernel hands it the table
// the root table lists with signature "APIC" (Kernel/Arch/x86_64/ACPIDiscovery.swift).
//
// Beyond "no crash", an accepted table is walked again here, independently: its entries must
// tile the bytes from offset 44 to exactly its length, each long enough for its type, and the
// processors reported must be those entries, in order. A rejected entry's offset must lie
// inside the table.

/// One input: the bytes as given, then with the checksums repaired.
func fuzzMADT(_ input: UnsafeRawBufferPointer) {
  checkMADT(input)
  var repaired = Array(input)
  ChecksumRepair.fixTable(&repaired)
  repaired.withUnsafeBytes(checkMADT)
}

/// Parses `bytes` and checks the outcome against an independent walk of the entries.
func checkMADT(_ bytes: UnsafeRawBufferPointer) {
  let parsed = outcome { () throws(ACPIError) in try MADT.parse(bytes) }
  switch parsed {
  case .success(let madt):
    let length = Int(bytes.acpiUInt32(at: 4))
    require(length >= MADT.entriesOffset && length <= bytes.count, "length within the bytes")
    require(madt.processors == walk(bytes.prefix(bytes: length)), "processors differ from a walk")
    let controllers = countControllers(bytes.prefix(bytes: length))
    require(madt.ioAPICs.count == controllers.ioAPICs, "I/O APICs differ from a walk")
    require(madt.overrides.count == controllers.isaOverrides, "ISA overrides differ from a walk")
    for irq: UInt8 in 0..<16 {
      let route = madt.route(isaIRQ: irq)
      if let first = madt.overrides.first(where: { $0.source == irq }) {
        require(route.gsi == first.gsi, "IRQ \(irq) not routed by its first override")
      } else {
        require(route == (UInt32(irq), false, false), "IRQ \(irq) without an override not identity-mapped")
      }
    }
    let exact = outcome { () throws(ACPIError) in try MADT.parse(bytes.prefix(bytes: length)) }
    require(exact == parsed, "bytes past the length changed the MADT")
  case .failure(.badEntry(let offset)):
    let length = Int(bytes.acpiUInt32(at: 4))
    require(offset >= MADT.entriesOffset && offset < length, "bad entry at \(offset) of \(length)")
  case .failure:
    break
  }
}

/// The I/O APIC entries (type 1, at least 12 bytes) and ISA interrupt source overrides
/// (type 2 with bus 0, at least 10 bytes) of a table the parser accepted.
func countControllers(_ table: UnsafeRawBufferPointer) -> (ioAPICs: Int, isaOverrides: Int) {
  var counts = (ioAPICs: 0, isaOverrides: 0)
  var offset = MADT.entriesOffset
  while offset + 2 <= table.count && table[offset + 1] >= 2 {
    let length = Int(table[offset + 1])
    if table[offset] == 1 {
      require(length >= 12, "an I/O APIC entry of \(length) bytes accepted")
      counts.ioAPICs += 1
    } else if table[offset] == 2 {
      require(length >= 10, "an override entry of \(length) bytes accepted")
      if table[offset + 2] == 0 { counts.isaOverrides += 1 }
    }
    offset += length
  }
  return counts
}

/// The processors of a table the parser accepted, found by a second walk that requires
/// every entry to lie within the table.
func walk(_ table: UnsafeRawBufferPointer) -> [MADT.Processor] {
  var processors: [MADT.Processor] = []
  var offset = MADT.entriesOffset
  while offset < table.count {
    require(table.count - offset >= 2, "an entry header past the end at \(offset)")
    let type = table[offset]
    let length = Int(table[offset + 1])
    require(length >= 2 && offset + length <= table.count, "entry at \(offset) leaves the table")
    let entry = UnsafeRawBufferPointer(rebasing: table[offset..<(offset + length)])
    if type == 0 {
      require(length >= 8, "a local APIC entry of \(length) bytes accepted")
      if entry[3] != 0xFF {
        processors.append(
          processor(id: UInt32(entry[3]), uid: UInt32(entry[2]), flags: entry.acpiUInt32(at: 4)))
      }
    } else if type == 9 {
      require(length >= 16, "an x2APIC entry of \(length) bytes accepted")
      let id = entry.acpiUInt32(at: 4)
      if id != 0xFFFF_FFFF {
        processors.append(
          processor(
            id: id, uid: entry.acpiUInt32(at: 12), flags: entry.acpiUInt32(at: 8), x2APIC: true))
      }
    }
    offset += length
  }
  require(offset == table.count, "entries overrun the table")
  return processors
}

/// A processor as ACPI 6.5 Table 5.23 defines its flags (bit 0 enabled, bit 1 online capable).
func processor(id: UInt32, uid: UInt32, flags: UInt32, x2APIC: Bool = false) -> MADT.Processor {
  MADT.Processor(
    apicID: APICID(id), processorUID: uid, isEnabled: flags & 1 != 0,
    isOnlineCapable: flags & 2 != 0, isX2APICEntry: x2APIC)
}
