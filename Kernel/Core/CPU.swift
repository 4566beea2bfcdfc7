// CPU identity: the dense logical CPU number and the sparse hardware APIC ID.
//
// Lockstep keeps the two apart on purpose (docs/architecture.md, principle 3): a `CPUIndex` indexes
// per-CPU arrays and CPU sets, an `APICID` is only ever written into an interrupt command.
// The one map between them is `CPUTable`.

/// The largest number of CPUs Lockstep supports; CPU sets and per-CPU arrays are sized by it.
///
/// QEMU's largest x86 machine (q35, 288 vCPUs) fits. This is the only fixed CPU limit in
/// the kernel (docs/architecture.md, principle 8).
/// Linux: `NR_CPUS`
public let maxCPUs = 512

/// A dense logical CPU number, `0..<n`, assigned from the MADT with the boot CPU as 0.
///
/// Linux: the `int cpu` argument of the cpumask and smp_* APIs.
/// - Note: Not an APIC ID; use `CPUTable` to translate.
public struct CPUIndex: Hashable, Comparable, Sendable {
  /// The CPU number, `0..<maxCPUs` for every CPU that exists.
  public let rawValue: Int

  /// Wraps a CPU number.
  ///
  /// - Parameter rawValue: the dense CPU number. Not range-checked here; `CPUSet` checks it
  ///   against `maxCPUs` when the index is used.
  public init(_ rawValue: Int) {
    self.rawValue = rawValue
  }

  /// The boot CPU (the bootstrap processor), always CPU 0.
  public static let boot = CPUIndex(0)

  /// What a CPU that does not know its number yet (an AP before it found its slot)
  /// gets for "the running CPU". Never a valid index: code that indexes per-CPU state
  /// must not run there.
  public static let unknown = CPUIndex(-1)

  /// Whether this is a real CPU number rather than `unknown`.
  public var isKnown: Bool { rawValue >= 0 }

  /// Orders CPUs by number.
  ///
  /// - Parameters:
  ///   - lhs: a CPU.
  ///   - rhs: another CPU.
  /// - Returns: `true` if `lhs` has the lower number.
  public static func < (lhs: CPUIndex, rhs: CPUIndex) -> Bool {
    lhs.rawValue < rhs.rawValue
  }
}

/// A local APIC ID: the sparse hardware name of a logical processor.
///
/// 8 bits in xAPIC mode, 32 bits in x2APIC mode (Intel SDM Vol. 3A §11.4.6 "Local APIC ID",
/// §11.12.5 "x2APIC Register Availability"). IDs need not be dense and may exceed 255.
/// Linux: the `apicid` / `phys_apicid` values of arch/x86.
public struct APICID: Hashable, Comparable, Sendable {
  /// The ID as the hardware and the MADT store it.
  public let rawValue: UInt32

  /// Wraps a hardware APIC ID.
  ///
  /// - Parameter rawValue: the ID as read from the local APIC or the MADT.
  public init(_ rawValue: UInt32) {
    self.rawValue = rawValue
  }

  /// The xAPIC broadcast destination, 0xFF (Intel SDM Vol. 3A §11.6.2.1): never a CPU's ID.
  public static let xAPICBroadcast = APICID(0xFF)

  /// Whether an xAPIC (8-bit destination field) can address this CPU.
  ///
  /// IDs below 0xFF fit; 0xFF itself is the broadcast destination, not a CPU.
  public var fitsXAPIC: Bool {
    rawValue < 0xFF
  }

  /// Orders APIC IDs numerically.
  ///
  /// - Parameters:
  ///   - lhs: an APIC ID.
  ///   - rhs: another APIC ID.
  /// - Returns: `true` if `lhs` is numerically smaller.
  public static func < (lhs: APICID, rhs: APICID) -> Bool {
    lhs.rawValue < rhs.rawValue
  }
}

/// An interrupt vector: an index into the IDT, 0...255 (Intel SDM Vol. 3A §6.2). 0-31
/// are the architecture's exceptions; the kernel names the others it assigns.
public struct Vector: Hashable, Sendable {
  /// The vector number.
  public let rawValue: UInt8

  /// Wraps a vector number.
  public init(_ rawValue: UInt8) {
    self.rawValue = rawValue
  }

  /// Whether this is one of the architecture's exceptions (0-31) rather than an
  /// interrupt.
  public var isException: Bool { rawValue < 32 }
}
