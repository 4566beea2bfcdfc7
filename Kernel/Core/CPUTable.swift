// The one map between logical CPU numbers and APIC IDs (docs/architecture.md, principle 3).
//
// Numbers are dense and assigned once at boot from the MADT: the boot CPU is 0, then every
// enabled processor in table order. Linux does the same through
// acpi_parse_lapic()/acpi_register_lapic() -> generic_processor_info(), which also gives the
// boot CPU number 0 and skips disabled and duplicate entries.

/// Why `CPUTable.build(processors:bootAPICID:limit:)` left a processor out (or noted it).
public enum CPUTableDiagnostic: Equatable, Sendable {
  /// The boot CPU's APIC ID is not in the MADT; it is CPU 0 all the same.
  case bootCPUMissingFromMADT(APICID)
  /// A second entry with an APIC ID already seen; ignored.
  case duplicate(APICID)
  /// A processor without the Enabled flag; ignored. `onlineCapable`: it could be hot-added.
  case notEnabled(APICID, onlineCapable: Bool)
  /// An enabled processor beyond the possible-CPU limit (`nr_cpus`); ignored.
  case overLimit(APICID)
  /// An enabled processor beyond `maxCPUs`; ignored.
  case tooMany(APICID)
  /// An enabled processor whose APIC ID the APIC mode in use cannot address (above
  /// 254 in xAPIC mode, whose destination field has 8 bits and 0xFF means all); ignored.
  case notAddressable(APICID)
}

/// The dense CPU numbering of this machine: `CPUIndex` to `APICID` and back.
///
/// Context: built once on the boot CPU at init (allocates); read-only afterwards, so lookups
/// are safe from any context.
public struct CPUTable: Equatable, Sendable {
  /// One CPU: its dense number and its hardware ID.
  public struct Entry: Equatable, Sendable {
    /// The CPU's logical number; equals its position in `entries`.
    public var cpu: CPUIndex
    /// The CPU's local APIC ID.
    public var apicID: APICID

    /// Creates an entry.
    ///
    /// - Parameters:
    ///   - cpu: the logical number.
    ///   - apicID: the APIC ID.
    public init(cpu: CPUIndex, apicID: APICID) {
      self.cpu = cpu
      self.apicID = apicID
    }
  }

  /// The CPUs; `entries[i].cpu == CPUIndex(i)`, and entry 0 is the boot CPU.
  public var entries: [Entry]
  /// Processors left out or noted while building, in table order.
  public var diagnostics: [CPUTableDiagnostic]

  /// Creates a table from entries and diagnostics as given.
  ///
  /// - Parameters:
  ///   - entries: the CPUs, numbered densely from 0.
  ///   - diagnostics: the notes to keep.
  public init(entries: [Entry], diagnostics: [CPUTableDiagnostic] = []) {
    self.entries = entries
    self.diagnostics = diagnostics
  }

  /// A table holding only the boot CPU, for when no usable MADT exists.
  ///
  /// - Parameter bootAPICID: the boot CPU's APIC ID, read from its local APIC.
  /// - Returns: a one-CPU table.
  public static func bootOnly(_ bootAPICID: APICID) -> CPUTable {
    CPUTable(entries: [Entry(cpu: .boot, apicID: bootAPICID)])
  }

  /// Numbers the MADT's processors.
  ///
  /// CPU 0 is the boot CPU whether or not the MADT lists it. Then each enabled processor, in
  /// table order, gets the next number; duplicates, disabled processors, and those beyond
  /// `limit` or `maxCPUs` are left out with a diagnostic each.
  /// Linux: acpi_parse_lapic() / acpi_parse_x2apic() -> generic_processor_info()
  /// - Parameters:
  ///   - processors: `MADT.processors`, in table order.
  ///   - bootAPICID: the boot CPU's APIC ID, read from its local APIC.
  ///   - limit: possible CPUs (`CPULimits.possible`), at least 1.
  ///   - xAPICOnly: the local APICs run in xAPIC mode, so only IDs that fit 8 bits
  ///     (`APICID.fitsXAPIC`) can be sent an IPI; the others are left out.
  /// - Returns: the table.
  public static func build(
    processors: [MADT.Processor], bootAPICID: APICID, limit: Int, xAPICOnly: Bool = false
  ) -> CPUTable {
    precondition(limit >= 1, "the boot CPU is always possible")
    var table = bootOnly(bootAPICID)
    if !processors.contains(where: { $0.apicID == bootAPICID }) {
      table.diagnostics.append(.bootCPUMissingFromMADT(bootAPICID))
    }
    var seen: [APICID] = []
    for processor in processors {
      let id = processor.apicID
      if seen.contains(id) {
        table.diagnostics.append(.duplicate(id))
        continue
      }
      seen.append(id)
      if id != bootAPICID {
        table.add(processor, limit: limit, xAPICOnly: xAPICOnly)
      }
    }
    return table
  }

  /// Appends one non-boot processor, or records why it was left out.
  private mutating func add(_ processor: MADT.Processor, limit: Int, xAPICOnly: Bool) {
    let id = processor.apicID
    if !processor.isEnabled {
      diagnostics.append(.notEnabled(id, onlineCapable: processor.isOnlineCapable))
    } else if xAPICOnly && !id.fitsXAPIC {
      diagnostics.append(.notAddressable(id))
    } else if entries.count >= maxCPUs {
      diagnostics.append(.tooMany(id))
    } else if entries.count >= limit {
      diagnostics.append(.overLimit(id))
    } else {
      entries.append(Entry(cpu: CPUIndex(entries.count), apicID: id))
    }
  }

  /// The number of CPUs in the table.
  public var count: Int {
    entries.count
  }

  /// The logical number of the CPU with this APIC ID.
  ///
  /// - Parameter apicID: a hardware ID, such as one read from the local APIC.
  /// - Returns: the CPU, or `nil` if no CPU in the table has this ID.
  public func cpu(for apicID: APICID) -> CPUIndex? {
    for entry in entries where entry.apicID == apicID {
      return entry.cpu
    }
    return nil
  }

  /// The APIC ID of a CPU, for addressing an interrupt to it.
  ///
  /// - Parameter cpu: a CPU in the table.
  /// - Returns: its APIC ID.
  /// - Precondition: `cpu.rawValue < count`.
  public func apicID(of cpu: CPUIndex) -> APICID {
    precondition(cpu.rawValue >= 0 && cpu.rawValue < entries.count, "CPU not in table")
    return entries[cpu.rawValue].apicID
  }
}
