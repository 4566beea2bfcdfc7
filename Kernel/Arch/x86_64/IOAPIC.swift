import _Volatile

/// The I/O APICs the MADT lists: where a device's interrupt line (a global system
/// interrupt, GSI) becomes a vector on some CPU.
///
/// Each I/O APIC has two memory-mapped registers, IOREGSEL at offset 0 and IOWIN at 0x10:
/// write a register's index to the first, then read or write it through the second
/// (Intel 82093AA I/O APIC datasheet, §3.0). Register 1 holds the version and the number
/// of redirection entries less one (bits 23:16); entry n is the register pair 0x10 + 2n
/// (low dword) and 0x11 + 2n (high dword): vector, delivery mode, destination mode,
/// polarity, trigger mode, mask, destination (§3.2.4). Their window lies in the top GiB,
/// which Boot/boot.asm maps uncached.
///
/// The kernel routes one line only, the serial console's input (`SerialInput`); every
/// other entry stays masked, as `setUp` leaves them.
/// Linux: clear_IO_APIC() at set-up, then ioapic_write_entry() per routed pin.
enum IOAPIC {
  /// One I/O APIC: its registers and the GSIs its pins stand for.
  private struct Chip {
    let address: UInt64
    let gsiBase: UInt32
    let pins: UInt32
  }

  /// The I/O APICs, set once by `setUp` before any other CPU runs.
  nonisolated(unsafe) private static var chips: [Chip] = []
  /// Serialises the select-then-access register pairs across CPUs.
  private static let lock = SpinLock<X86_64Platform>("ioapic")

  private static let versionRegister: UInt32 = 0x01
  private static let redirectionBase: UInt32 = 0x10
  /// Low dword bit 16: the pin is masked (§3.2.4).
  private static let masked: UInt32 = 1 << 16
  /// Low dword bit 13: input pin polarity, 1 = active low.
  private static let activeLow: UInt32 = 1 << 13
  /// Low dword bit 15: trigger mode, 1 = level.
  private static let levelTriggered: UInt32 = 1 << 15

  /// Records the MADT's I/O APICs and masks every pin of each. Boot CPU, before the
  /// APs start; allocates.
  static func setUp(_ madt: MADT?) {
    guard let madt else { return }
    for entry in madt.ioAPICs {
      let address = UInt64(entry.address)
      let version = read(address, versionRegister)
      let pins = (version >> 16 & 0xFF) + 1
      chips.append(Chip(address: address, gsiBase: entry.gsiBase, pins: pins))
      for pin in 0..<pins {
        write(address, redirectionBase + 2 * pin, masked)
      }
    }
    log("ioapic: \(chips.count) I/O APIC(s), \(chips.reduce(0) { $0 + Int($1.pins) }) pins, all masked")
  }

  /// Why a GSI could not be routed.
  enum RouteError: Error {
    /// No I/O APIC's pins cover the GSI.
    case noPin(gsi: UInt32)
    /// The destination APIC ID does not fit the entry's 8-bit physical destination
    /// (with x2APIC IDs above 255 only interrupt remapping, which QEMU's default
    /// machine lacks, could reach it).
    case destinationTooLarge(APICID)
  }

  /// Routes `gsi` to `vector` on the CPU whose APIC ID is `destination`, fixed delivery,
  /// physical destination mode, unmasked. Thread context, any CPU.
  static func route(
    gsi: UInt32, activeLow isActiveLow: Bool, levelTriggered isLevel: Bool, to destination: APICID,
    vector: Vector
  ) throws(RouteError) {
    guard let chip = chips.first(where: { gsi >= $0.gsiBase && gsi - $0.gsiBase < $0.pins }) else {
      throw .noPin(gsi: gsi)
    }
    guard destination.rawValue <= 0xFF else { throw .destinationTooLarge(destination) }
    let pin = gsi - chip.gsiBase
    var low = UInt32(vector.rawValue)  // delivery mode 000 fixed, destination mode 0 physical
    if isActiveLow { low |= activeLow }
    if isLevel { low |= levelTriggered }
    lock.withLock {
      // Masked while the destination is written, then unmasked with the vector: the pin
      // never delivers half an entry.
      writeUnlocked(chip.address, redirectionBase + 2 * pin, masked)
      writeUnlocked(chip.address, redirectionBase + 2 * pin + 1, destination.rawValue << 24)
      writeUnlocked(chip.address, redirectionBase + 2 * pin, low)
    }
  }

  /// Masks `gsi` again, if some I/O APIC has it. Thread context, any CPU.
  static func mask(gsi: UInt32) {
    guard let chip = chips.first(where: { gsi >= $0.gsiBase && gsi - $0.gsiBase < $0.pins }) else { return }
    write(chip.address, redirectionBase + 2 * (gsi - chip.gsiBase), masked)
  }

  private static func read(_ base: UInt64, _ register: UInt32) -> UInt32 {
    lock.withLock {
      select(base, register)
      return window(base).load()
    }
  }

  private static func write(_ base: UInt64, _ register: UInt32, _ value: UInt32) {
    lock.withLock { writeUnlocked(base, register, value) }
  }

  private static func writeUnlocked(_ base: UInt64, _ register: UInt32, _ value: UInt32) {
    select(base, register)
    window(base).store(value)
  }

  /// IOREGSEL: bits 7:0 choose the register IOWIN reaches.
  private static func select(_ base: UInt64, _ register: UInt32) {
    VolatileMappedRegister<UInt32>(unsafeBitPattern: UInt(base)).store(register)
  }

  private static func window(_ base: UInt64) -> VolatileMappedRegister<UInt32> {
    VolatileMappedRegister<UInt32>(unsafeBitPattern: UInt(base) + 0x10)
  }
}
