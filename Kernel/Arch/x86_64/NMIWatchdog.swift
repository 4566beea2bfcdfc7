import Synchronization

/// A periodic NMI for CPUs that wait with interrupts off, so that even such a wait is
/// bounded: Linux's old NMI watchdog "through the 8259A". The PIT's channel 0 ticks
/// every 50 ms into line 0 of the master 8259A, whose output QEMU wires to every local
/// APIC's LINT0. A CPU that wants the tick programs its own LINT0 to deliver an NMI while
/// it waits (`beginWatching`), and masks it again after; every other CPU keeps LINT0
/// masked (`LocalAPIC.enable`), so the tick costs them nothing.
///
/// No interrupt-acknowledge cycle follows an NMI, so the NMI handler acknowledges the
/// 8259A itself (`acknowledge`: the OCW3 poll command, which is one, then an EOI), or
/// its output would stay raised and LINT0 would see no further edge.
///
/// Under KVM the 8259A is in the host kernel and its output reaches the boot CPU alone,
/// as an ExtINT: there is no such NMI, `isAvailable` is false, and the stop machinery
/// keeps one CPU spinning to watch the clock instead (cheap there: a spinning vCPU's
/// PAUSEs make KVM yield it).
enum NMIWatchdog {
  /// Whether the tick reaches LINT0 (not under KVM). Set once by `setUp`.
  nonisolated(unsafe) private(set) static var isAvailable = false

  /// The PIT's input clock, and the divisor for one tick every 50 ms (20 Hz; the 16-bit
  /// divisor allows no slower than 18.2 Hz).
  private static let pitHertz: UInt64 = 1_193_182
  static let tickNanoseconds: UInt64 = 50_000_000
  private static var divisor: UInt16 { UInt16(pitHertz * tickNanoseconds / 1_000_000_000) }

  /// Starts the tick unless running under KVM. Boot CPU, interrupts off, after
  /// `PIC.maskAll` and before the APs start.
  static func setUp() {
    if runningUnderKVM {
      log("nmi-watchdog: KVM's 8259A reaches only the boot CPU; stops watch the clock by spinning")
      return
    }
    CPUInstructions.outb(Port.pitCommand, 0x34)  // channel 0, low then high byte, mode 2 (rate generator)
    CPUInstructions.outb(Port.pitChannel0, UInt8(truncatingIfNeeded: divisor))
    CPUInstructions.outb(Port.pitChannel0, UInt8(truncatingIfNeeded: divisor >> 8))
    CPUInstructions.outb(Port.picMasterData, 0xFE)  // line 0 only; the slave stays masked
    isAvailable = true
    log("nmi-watchdog: PIT tick every \(tickNanoseconds / 1_000_000) ms to LINT0 of CPUs that wait with interrupts off")
  }

  /// Takes the tick on this CPU, as an NMI, until `endWatching`. Interrupts off.
  static func beginWatching() {
    LocalAPIC.write(.lvtLINT0, LocalAPIC.deliveryNMI)
    // A tick that came while no LINT0 took it left the 8259A's output raised: lower
    // it, so the next tick is an edge LINT0 sees. Port I/O is dear under emulation, so
    // at most once per half tick: a wait's first NMI may then come up to 1.5 ticks late.
    let now = CPUInstructions.readTSC()
    if Clock.ticksToNanoseconds(now &- lastAcknowledged.load(ordering: .relaxed)) > tickNanoseconds / 2 {
      lastAcknowledged.store(now, ordering: .relaxed)
      acknowledge()
    }
  }

  /// When `beginWatching` last acknowledged the 8259A (relaxed: a rate limit).
  private static let lastAcknowledged = Atomic<UInt64>(0)

  /// Masks this CPU's LINT0 again.
  static func endWatching() {
    LocalAPIC.write(.lvtLINT0, LocalAPIC.lvtMaskedValue)
  }

  /// Acknowledges the 8259A: the poll command (OCW3 with P set) makes the next read an
  /// interrupt acknowledge, then a non-specific EOI. Harmless when nothing is pending.
  /// NMI context too.
  static func acknowledge() {
    CPUInstructions.outb(Port.picMasterCommand, 0x0C)
    _ = CPUInstructions.inb(Port.picMasterCommand)
    CPUInstructions.outb(Port.picMasterCommand, 0x20)
  }

  /// CPUID's hypervisor leaf says "KVMKVMKVM".
  private static var runningUnderKVM: Bool {
    guard CPUInstructions.cpuid(1).ecx & (1 << 31) != 0 else { return false }
    let leaf = CPUInstructions.cpuid(0x4000_0000)
    return leaf.ebx == 0x4B4D_564B && leaf.ecx == 0x564B_4D56 && leaf.edx == 0x0000_004D
  }
}
