// The local APIC Interrupt Command Register as a pure value: how to ask for an IPI, INIT,
// STARTUP or NMI, packed for the xAPIC (two 32-bit registers) or the x2APIC (one 64-bit MSR).
// Intel SDM Vol. 3A §11.6.1 "Interrupt Command Register (ICR)", Figure 11-12, and §11.12.9
// "ICR Operation in x2APIC Mode", Figure 11-28. The register writes live in Arch/x86_64.

/// One interrupt command: what to deliver, how, and to which CPU.
///
/// Destination mode is always physical (bit 11 = 0): Lockstep addresses CPUs by APIC ID or
/// by shorthand, never by logical destination.
/// Linux: __default_send_IPI_dest_field(), native_x2apic_icr_write()
public struct InterruptCommand: Equatable, Sendable {
  /// ICR bits 8-10, Delivery Mode (SDM Vol. 3A Figure 11-12).
  public enum DeliveryMode: UInt32, Sendable {
    /// 000 Fixed: deliver `vector` to the destination.
    case fixed = 0
    /// 001 Lowest Priority: model-specific, not used by Lockstep.
    case lowestPriority = 1
    /// 010 SMI: a system management interrupt; vector must be 0.
    case smi = 2
    /// 100 NMI: a non-maskable interrupt; vector ignored, edge triggered.
    case nmi = 4
    /// 101 INIT: reset the target to its wait-for-SIPI state (the SDM's "INIT").
    case initialize = 5
    /// 110 Start Up: a SIPI; the vector is the 4 KiB page the AP starts executing at.
    case startup = 6
  }

  /// ICR bits 18-19, Destination Shorthand (SDM Vol. 3A Figure 11-12).
  public enum Shorthand: UInt32, Sendable {
    /// 00 No Shorthand: the destination field names the target.
    case none = 0
    /// 01 Self.
    case selfOnly = 1
    /// 10 All Including Self.
    case allIncludingSelf = 2
    /// 11 All Excluding Self.
    case allExcludingSelf = 3
  }

  /// Bits 0-7, Vector (the start-up page for a SIPI).
  public var vector: UInt8
  /// Bits 8-10, Delivery Mode.
  public var deliveryMode: DeliveryMode
  /// Bit 14, Level: 1 = assert. The SDM requires 1 except for the INIT level de-assert.
  public var isLevelAssert: Bool
  /// Bit 15, Trigger Mode: 1 = level, 0 = edge. Level only for the INIT level de-assert.
  public var isLevelTriggered: Bool
  /// Bits 18-19, Destination Shorthand.
  public var shorthand: Shorthand
  /// The target's APIC ID, ignored by the hardware when `shorthand` is not `.none`.
  public var destination: APICID

  /// ICR bit 11, Destination Mode: 0 = physical (the only mode Lockstep uses).
  public static let destinationModeLogicalBit: UInt32 = 1 << 11
  /// ICR bit 12, Delivery Status (read only): 1 = send pending. xAPIC only; reserved in
  /// x2APIC mode (SDM Vol. 3A §11.12.9).
  public static let deliveryStatusBit: UInt32 = 1 << 12
  /// ICR bit 14, Level.
  public static let levelAssertBit: UInt32 = 1 << 14
  /// ICR bit 15, Trigger Mode.
  public static let levelTriggeredBit: UInt32 = 1 << 15

  /// Creates a command.
  ///
  /// - Parameters:
  ///   - vector: the vector, or start-up page; 0 where the mode ignores it.
  ///   - deliveryMode: what to deliver.
  ///   - destination: the target APIC ID (ignored with a shorthand).
  ///   - shorthand: `.none` to use `destination`.
  ///   - isLevelAssert: the Level bit; leave `true` except for INIT de-assert.
  ///   - isLevelTriggered: the Trigger Mode bit; leave `false` except for INIT de-assert.
  public init(
    vector: UInt8, deliveryMode: DeliveryMode, destination: APICID,
    shorthand: Shorthand = .none, isLevelAssert: Bool = true, isLevelTriggered: Bool = false
  ) {
    self.vector = vector
    self.deliveryMode = deliveryMode
    self.destination = destination
    self.shorthand = shorthand
    self.isLevelAssert = isLevelAssert
    self.isLevelTriggered = isLevelTriggered
  }

  /// INIT level assert: resets the target AP (SDM Vol. 3A §9.4.4.1, INIT-SIPI-SIPI).
  ///
  /// Level triggered with Level = 1, as the MP specification's universal start-up algorithm
  /// and Linux's wakeup_secondary_cpu_via_init() send it.
  /// - Parameter destination: the AP's APIC ID.
  /// - Returns: the command (xAPIC low word 0x0000C500).
  public static func initAssert(to destination: APICID) -> InterruptCommand {
    InterruptCommand(
      vector: 0, deliveryMode: .initialize, destination: destination, isLevelTriggered: true)
  }

  /// INIT level de-assert: the legacy second half of INIT (SDM Vol. 3A Figure 11-12 note:
  /// Level = 0 and Trigger = level). Ignored by Pentium 4 and later, harmless to send.
  ///
  /// - Parameter destination: the AP's APIC ID.
  /// - Returns: the command (xAPIC low word 0x00008500).
  public static func initDeassert(to destination: APICID) -> InterruptCommand {
    InterruptCommand(
      vector: 0, deliveryMode: .initialize, destination: destination, isLevelAssert: false,
      isLevelTriggered: true)
  }

  /// STARTUP (SIPI): the AP starts in real mode at physical address `page << 12`.
  ///
  /// - Parameters:
  ///   - page: the 4 KiB page of the trampoline, below 1 MiB (e.g. 0x08 for 0x8000).
  ///   - destination: the AP's APIC ID.
  /// - Returns: the command (xAPIC low word 0x00004600 | page).
  public static func startup(page: UInt8, to destination: APICID) -> InterruptCommand {
    InterruptCommand(vector: page, deliveryMode: .startup, destination: destination)
  }

  /// A fixed interrupt on `vector`: an ordinary IPI.
  ///
  /// - Parameters:
  ///   - vector: the IDT vector, 32...255.
  ///   - destination: the target APIC ID.
  /// - Returns: the command (xAPIC low word 0x00004000 | vector).
  public static func fixed(_ vector: Vector, to destination: APICID) -> InterruptCommand {
    InterruptCommand(vector: vector.rawValue, deliveryMode: .fixed, destination: destination)
  }

  /// A non-maskable interrupt, for stopping a CPU that does not answer IPIs.
  ///
  /// - Parameter destination: the target APIC ID.
  /// - Returns: the command (xAPIC low word 0x00004400).
  public static func nmi(to destination: APICID) -> InterruptCommand {
    InterruptCommand(vector: 0, deliveryMode: .nmi, destination: destination)
  }

  /// The ICR low word (offset 0x300 in xAPIC mode), without Delivery Status.
  ///
  /// Writing it sends the interrupt, so write `xAPICHigh` first.
  public var xAPICLow: UInt32 {
    var low = UInt32(vector) | deliveryMode.rawValue << 8 | shorthand.rawValue << 18
    if isLevelAssert {
      low |= Self.levelAssertBit
    }
    if isLevelTriggered {
      low |= Self.levelTriggeredBit
    }
    return low
  }

  /// The ICR high word (offset 0x310 in xAPIC mode): Destination in bits 24-31.
  ///
  /// 0 when a shorthand is used (the field is ignored then).
  /// - Precondition: with no shorthand, `destination.fitsXAPIC` or it is the broadcast 0xFF.
  public var xAPICHigh: UInt32 {
    guard shorthand == .none else { return 0 }
    precondition(destination.rawValue <= 0xFF, "APIC ID does not fit the xAPIC ICR")
    return destination.rawValue << 24
  }

  /// The whole ICR for one x2APIC MSR write (MSR 0x830): Destination in bits 32-63, the low
  /// half as `xAPICLow` (SDM Vol. 3A §11.12.9).
  public var x2APIC: UInt64 {
    let target = shorthand == .none ? destination.rawValue : 0
    return UInt64(target) << 32 | UInt64(xAPICLow)
  }
}
