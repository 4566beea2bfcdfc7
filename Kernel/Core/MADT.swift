// The Multiple APIC Description Table: the firmware's list of processors and interrupt
// controllers. ACPI 6.5 §5.2.12 "Multiple APIC Description Table (MADT)".

/// The parts of the MADT the kernel uses: the processors, in table order, for SMP
/// bring-up; the I/O APICs and the ISA interrupt overrides, for routing a device's
/// interrupt (the serial console's input).
///
/// Layout (§5.2.12, Table 5.19): the 36-byte header (signature `"APIC"`), the local APIC
/// address at 36 (u32), flags at 40 (u32, bit 0 PCAT_COMPAT), then interrupt controller
/// structures from offset 44, each starting with a type byte and a length byte.
/// Linux: struct acpi_table_madt, acpi_parse_madt_lapic_entries()
public struct MADT: Equatable, Sendable {
  /// A processor entry: type 0 (Processor Local APIC) or type 9 (Processor Local x2APIC).
  public struct Processor: Equatable, Sendable {
    /// The processor's local APIC ID.
    public var apicID: APICID
    /// The ACPI Processor UID, matching the processor's object in the namespace.
    public var processorUID: UInt32
    /// Flags bit 0 `Enabled`: the processor is usable now.
    public var isEnabled: Bool
    /// Flags bit 1 `Online Capable`: a disabled processor can be enabled later (hot-add).
    public var isOnlineCapable: Bool
    /// Whether the entry was type 9 (Processor Local x2APIC) rather than type 0.
    public var isX2APICEntry: Bool

    /// Creates a processor entry.
    ///
    /// - Parameters:
    ///   - apicID: the local APIC ID.
    ///   - processorUID: the ACPI processor UID.
    ///   - isEnabled: flags bit 0.
    ///   - isOnlineCapable: flags bit 1.
    ///   - isX2APICEntry: `true` for a type 9 entry.
    public init(
      apicID: APICID, processorUID: UInt32, isEnabled: Bool, isOnlineCapable: Bool,
      isX2APICEntry: Bool
    ) {
      self.apicID = apicID
      self.processorUID = processorUID
      self.isEnabled = isEnabled
      self.isOnlineCapable = isOnlineCapable
      self.isX2APICEntry = isX2APICEntry
    }
  }

  /// An I/O APIC: structure type 1 (§5.2.12.3, Table 5.26).
  public struct IOAPICEntry: Equatable, Sendable {
    /// The I/O APIC's ID.
    public var id: UInt8
    /// Physical address of its register window (IOREGSEL, IOWIN).
    public var address: UInt32
    /// The first global system interrupt (GSI) its input 0 stands for.
    public var gsiBase: UInt32

    /// Creates an I/O APIC entry.
    public init(id: UInt8, address: UInt32, gsiBase: UInt32) {
      self.id = id
      self.address = address
      self.gsiBase = gsiBase
    }
  }

  /// An Interrupt Source Override: structure type 2 (§5.2.12.5, Table 5.27). An ISA IRQ
  /// that does not reach the GSI of its own number, or not edge-triggered active high.
  /// Linux: acpi_parse_int_src_ovr().
  public struct InterruptOverride: Equatable, Sendable {
    /// The ISA IRQ (the bus is always 0, ISA).
    public var source: UInt8
    /// The GSI it is wired to.
    public var gsi: UInt32
    /// MPS INTI flags (Table 5.28): bits 1:0 polarity, bits 3:2 trigger mode.
    public var flags: UInt16

    /// Creates an override.
    public init(source: UInt8, gsi: UInt32, flags: UInt16) {
      self.source = source
      self.gsi = gsi
      self.flags = flags
    }

    /// Polarity 11: active low (00 conforms to the bus: ISA is active high).
    public var isActiveLow: Bool { flags & 0b11 == 0b11 }
    /// Trigger mode 11: level (00 conforms to the bus: ISA is edge-triggered).
    public var isLevelTriggered: Bool { (flags >> 2) & 0b11 == 0b11 }
  }

  /// Physical address of the local APIC (xAPIC MMIO base) as the table states it.
  public var localAPICAddress: UInt32
  /// Multiple APIC flags; bit 0 PCAT_COMPAT: dual 8259 PICs are installed.
  public var flags: UInt32
  /// Processor entries (types 0 and 9) in table order; invalid IDs left out.
  public var processors: [Processor]
  /// I/O APIC entries (type 1) in table order.
  public var ioAPICs: [IOAPICEntry]
  /// Interrupt source overrides (type 2) of the ISA bus, in table order.
  public var overrides: [InterruptOverride]

  /// Offset of the first interrupt controller structure.
  public static let entriesOffset = 44
  /// Structure type 0, Processor Local APIC (§5.2.12.2), 8 bytes.
  static let processorLocalAPIC: UInt8 = 0
  /// Structure type 1, I/O APIC (§5.2.12.3), 12 bytes.
  static let ioAPICType: UInt8 = 1
  /// Structure type 2, Interrupt Source Override (§5.2.12.5), 10 bytes.
  static let interruptOverrideType: UInt8 = 2
  /// Structure type 9, Processor Local x2APIC (§5.2.12.12), 16 bytes.
  static let processorLocalX2APIC: UInt8 = 9
  /// Local APIC flags bit 0, Enabled (§5.2.12.2, Table 5.23).
  static let enabledFlag: UInt32 = 1 << 0
  /// Local APIC flags bit 1, Online Capable (§5.2.12.2, Table 5.23).
  static let onlineCapableFlag: UInt32 = 1 << 1

  /// Creates an MADT value.
  ///
  /// - Parameters:
  ///   - localAPICAddress: the local APIC address.
  ///   - flags: the multiple APIC flags.
  ///   - processors: the processor entries.
  ///   - ioAPICs: the I/O APIC entries.
  ///   - overrides: the interrupt source overrides.
  public init(
    localAPICAddress: UInt32, flags: UInt32, processors: [Processor], ioAPICs: [IOAPICEntry] = [],
    overrides: [InterruptOverride] = []
  ) {
    self.localAPICAddress = localAPICAddress
    self.flags = flags
    self.processors = processors
    self.ioAPICs = ioAPICs
    self.overrides = overrides
  }

  /// The GSI and the polarity and trigger ISA IRQ `irq` reaches: its override if the
  /// table has one, else the GSI of its own number, edge-triggered, active high.
  /// Linux: mp_override_legacy_irq(), and the identity mapping without an override.
  public func route(isaIRQ irq: UInt8) -> (gsi: UInt32, activeLow: Bool, levelTriggered: Bool) {
    if let override = overrides.first(where: { $0.source == irq }) {
      return (override.gsi, override.isActiveLow, override.isLevelTriggered)
    }
    return (UInt32(irq), false, false)
  }

  /// Validates an MADT and collects its processor entries.
  ///
  /// Structure types other than 0, 1, 2 and 9 are skipped by their length, and so are
  /// overrides of a bus other than ISA. A type 0 entry with
  /// APIC ID 0xFF and a type 9 entry with x2APIC ID 0xFFFFFFFF name no processor (they are
  /// the broadcast IDs) and are skipped, as Linux does.
  /// - Parameter table: the MADT's bytes, at least its `length`.
  /// - Returns: the MADT.
  /// - Throws: header errors from `SDTHeader.validate(_:signature:)`; `.badLength` if the
  ///   table is too short for its fixed fields; `.badEntry(offset:)` for a structure with a
  ///   length below 2, too short for its type, or running past the end of the table.
  public static func parse(_ table: UnsafeRawBufferPointer) throws(ACPIError) -> MADT {
    let (_, bytes) = try SDTHeader.validatedTable(table, signature: ACPI.signature("APIC"))
    guard bytes.count >= entriesOffset else { throw .badLength }
    var madt = MADT(
      localAPICAddress: bytes.acpiUInt32(at: 36), flags: bytes.acpiUInt32(at: 40),
      processors: [])
    var offset = entriesOffset
    while offset < bytes.count {
      let entry = try Self.entry(in: bytes, at: offset)
      if let processor = try Self.processor(in: entry, at: offset) {
        madt.processors.append(processor)
      }
      try Self.interruptController(in: entry, at: offset, into: &madt)
      // entry.count >= 2, so the walk always advances.
      offset += entry.count
    }
    return madt
  }

  /// The structure at `offset`, checked to have a length of at least 2 within the table.
  private static func entry(
    in bytes: UnsafeRawBufferPointer, at offset: Int
  ) throws(ACPIError) -> UnsafeRawBufferPointer {
    guard bytes.count - offset >= 2 else { throw .badEntry(offset: offset) }
    let length = Int(bytes.acpiUInt8(at: offset + 1))
    guard length >= 2, length <= bytes.count - offset else { throw .badEntry(offset: offset) }
    return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
  }

  /// Decodes a processor structure; `nil` for other types and for invalid IDs.
  private static func processor(
    in entry: UnsafeRawBufferPointer, at offset: Int
  ) throws(ACPIError) -> Processor? {
    switch entry.acpiUInt8(at: 0) {
    case processorLocalAPIC:
      // Table 5.22: UID at 2 (u8), APIC ID at 3 (u8), flags at 4 (u32).
      guard entry.count >= 8 else { throw .badEntry(offset: offset) }
      let id = UInt32(entry.acpiUInt8(at: 3))
      guard id != 0xFF else { return nil }
      let uid = UInt32(entry.acpiUInt8(at: 2))
      return decode(id: id, uid: uid, flags: entry.acpiUInt32(at: 4), isX2APIC: false)
    case processorLocalX2APIC:
      // Table 5.38: reserved at 2 (2 bytes), x2APIC ID at 4, flags at 8, UID at 12 (u32 each).
      guard entry.count >= 16 else { throw .badEntry(offset: offset) }
      let id = entry.acpiUInt32(at: 4)
      guard id != 0xFFFF_FFFF else { return nil }
      let uid = entry.acpiUInt32(at: 12)
      return decode(id: id, uid: uid, flags: entry.acpiUInt32(at: 8), isX2APIC: true)
    default:
      return nil
    }
  }

  /// Adds an I/O APIC or an ISA interrupt source override to `madt`; other types are
  /// left alone.
  private static func interruptController(
    in entry: UnsafeRawBufferPointer, at offset: Int, into madt: inout MADT
  ) throws(ACPIError) {
    switch entry.acpiUInt8(at: 0) {
    case ioAPICType:
      // Table 5.26: ID at 2 (u8), reserved at 3, address at 4 (u32), GSI base at 8 (u32).
      guard entry.count >= 12 else { throw .badEntry(offset: offset) }
      madt.ioAPICs.append(
        IOAPICEntry(id: entry.acpiUInt8(at: 2), address: entry.acpiUInt32(at: 4), gsiBase: entry.acpiUInt32(at: 8)))
    case interruptOverrideType:
      // Table 5.27: bus at 2 (u8, 0 = ISA), source at 3 (u8), GSI at 4 (u32), flags at 8 (u16).
      guard entry.count >= 10 else { throw .badEntry(offset: offset) }
      guard entry.acpiUInt8(at: 2) == 0 else { return }
      let flags = UInt16(entry.acpiUInt8(at: 8)) | UInt16(entry.acpiUInt8(at: 9)) << 8
      madt.overrides.append(
        InterruptOverride(source: entry.acpiUInt8(at: 3), gsi: entry.acpiUInt32(at: 4), flags: flags))
    default:
      return
    }
  }

  /// Builds a `Processor` from the raw fields shared by types 0 and 9.
  private static func decode(id: UInt32, uid: UInt32, flags: UInt32, isX2APIC: Bool) -> Processor {
    Processor(
      apicID: APICID(id), processorUID: uid, isEnabled: flags & enabledFlag != 0,
      isOnlineCapable: flags & onlineCapableFlag != 0, isX2APICEntry: isX2APIC)
  }
}
