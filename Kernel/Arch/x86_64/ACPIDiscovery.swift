/// Finds the firmware's ACPI tables in physical memory and hands their bytes to the
/// portable parsers in Kernel/Core (RSDP, RSDT/XSDT, MADT, FADT).
///
/// ACPI 6.5 §5.2.5.1 "Finding the RSDP on IA-PC Systems": search the first KiB of the
/// EBDA, then 0xE0000-0xFFFFF, on 16-byte boundaries. Everything found is below 4 GiB
/// here (identity mapped); a table claiming to live above that is reported and skipped.
enum ACPIDiscovery {
  /// What the kernel takes from ACPI.
  struct Findings {
    var madt: MADT?
    var fadt: FADT?
  }

  private static let mappedLimit: UInt64 = 0x1_0000_0000
  private static let maximumTableLength: UInt32 = 1 << 20

  /// Searches for the RSDP and the MADT and FADT it leads to. Problems are logged;
  /// whatever is missing is nil.
  static func discover() -> Findings {
    guard let rsdp = findRSDP() else {
      log("acpi: no valid RSDP in the EBDA or the BIOS area")
      return Findings()
    }
    let useXSDT = rsdp.xsdtAddress != nil
    let rootAddress = rsdp.xsdtAddress ?? UInt64(rsdp.rsdtAddress)
    guard let root = table(at: rootAddress, signature: useXSDT ? "XSDT" : "RSDT") else {
      return Findings()
    }
    let entries: [UInt64]
    do {
      entries = try RootTable.entries(root, entrySize: useXSDT ? 8 : 4)
    } catch {
      log("acpi: root table unreadable: \(line: describe(error))")
      return Findings()
    }
    return findings(in: entries)
  }

  private static func findings(in entries: [UInt64]) -> Findings {
    var result = Findings()
    for address in entries {
      guard let header = header(at: address) else { continue }
      do {
        if header.signature == ACPI.signature("APIC"), let bytes = table(at: address, signature: "APIC") {
          result.madt = try MADT.parse(bytes)
        } else if header.signature == ACPI.signature("FACP"),
          let bytes = table(at: address, signature: "FACP")
        {
          result.fadt = try FADT.parse(bytes)
        }
      } catch {
        log("acpi: table at \(hex: address) rejected: \(line: describe(error))")
      }
    }
    if result.madt == nil { log("acpi: no usable MADT") }
    return result
  }

  private static func findRSDP() -> RSDP? {
    let ebda = UInt64(UnsafePointer<UInt16>(bitPattern: 0x40E)!.pointee) << 4
    if ebda >= 0x8_0000 && ebda < 0xA_0000, let found = scan(from: ebda, length: 1024) {
      return found
    }
    return scan(from: 0xE_0000, length: 0x2_0000)
  }

  private static func scan(from start: UInt64, length: UInt64) -> RSDP? {
    var address = start
    while address + 20 <= start + length {
      let bytes = memory(address, count: Int(min(36, start + length - address)))
      if RSDP.hasSignature(bytes), let rsdp = try? RSDP.parse(bytes) {
        return rsdp
      }
      address += 16
    }
    return nil
  }

  private static func header(at address: UInt64) -> SDTHeader? {
    // Compared without adding to `address`: the firmware's 64-bit addresses can be
    // anything, and one within a header's size of 2^64 would overflow (a trap at boot).
    guard address != 0, address <= mappedLimit - UInt64(SDTHeader.size) else {
      log("acpi: table address \(hex: address) is outside the mapped 4 GiB")
      return nil
    }
    return try? SDTHeader.parse(memory(address, count: SDTHeader.size))
  }

  /// The whole table at `address`, validated (signature, length, checksum), or nil.
  private static func table(at address: UInt64, signature: StaticString) -> UnsafeRawBufferPointer? {
    guard let header = header(at: address) else { return nil }
    guard header.length <= maximumTableLength, UInt64(header.length) <= mappedLimit - address else {
      log("acpi: table at \(hex: address) claims \(header.length) bytes; skipped")
      return nil
    }
    let bytes = memory(address, count: Int(header.length))
    do {
      _ = try SDTHeader.validate(bytes, signature: ACPI.signature(signature))
      return bytes
    } catch {
      log("acpi: \(signature) at \(hex: address) rejected: \(line: describe(error))")
      return nil
    }
  }

  private static func memory(_ address: UInt64, count: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(address)), count: count)
  }

  /// A log phrase for a parser error.
  static func describe(_ error: ACPIError) -> LogLine {
    switch error {
    case .truncated: "truncated"
    case .badSignature: "bad signature"
    case .badChecksum: "bad checksum"
    case .badLength: "bad length"
    case .badRevision: "bad revision"
    case .badEntry(let offset): "bad entry at offset \(offset)"
    }
  }
}
