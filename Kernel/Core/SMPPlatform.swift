/// What the portable SMP and scheduling code needs from the machine it runs on: the
/// seam between the portable layers (Kernel/SMP, Kernel/Sched) and Kernel/Arch. It
/// lives in Core so that both portable layers stand on Core alone.
///
/// Requirements are static so generic code (`SpinLock<Platform>`, `CrossCalls<Platform>`,
/// later stop_machine) is specialised per platform in Embedded Swift: no existential,
/// no indirect call. The kernel provides `X86_64Platform`; host tests provide threads.
public protocol SMPPlatform {
  /// The CPU running the caller, or `CPUIndex.unknown` on a CPU that does not know its
  /// number yet (an AP before it found its slot). Any context.
  static var currentCPU: CPUIndex { get }
  /// Disables interrupts on the running CPU and returns how they were.
  static func saveAndDisableInterrupts() -> InterruptState
  /// Puts interrupts back as `state` says.
  static func restoreInterrupts(_ state: InterruptState)
  /// A spin-wait hint (x86 `pause`).
  static func relax()
  /// Enables interrupts and sleeps until one arrives or about `nanoseconds` pass,
  /// whichever is first, giving the hardware (or the host, under a hypervisor) back to
  /// others: x86's `sti; hlt`. Called with interrupts disabled, so that a condition the
  /// caller checked just before cannot miss its wake-up; returns with them enabled.
  static func waitForInterrupt(atMost nanoseconds: UInt64)
  /// Monotonic nanoseconds since boot, comparable across CPUs.
  static func nanoseconds() -> UInt64
  /// Writes a line to the log. Any context, never allocates.
  static func log(_ line: LogLine)
  /// Reports a fatal condition and stops the machine.
  static func panic(_ line: LogLine) -> Never

  /// Keeps the running thread on its CPU until the matching `preemptEnable()` (nests);
  /// a no-op where nothing preempts (before the scheduler runs, on the host's fake
  /// CPUs).
  /// Linux: preempt_disable().
  static func preemptDisable()
  /// Undoes one `preemptDisable()`; may switch threads if one became due meanwhile.
  /// Linux: preempt_enable().
  static func preemptEnable()

  /// Whether interrupts are enabled on the running CPU.
  static var interruptsEnabled: Bool { get }
  /// CPUs that may exist: 0..<possibleCPUCount. Linux: nr_cpu_ids.
  static var possibleCPUCount: Int { get }
  /// Whether `cpu` is online. Linux: cpu_online().
  static func isOnline(_ cpu: CPUIndex) -> Bool
  /// The online CPUs. Linux: cpu_online_mask.
  static var onlineCPUs: CPUSet { get }
  /// Interrupts `cpu` so that it runs `CrossCalls.handleInterrupt()`.
  /// Linux: arch_send_call_function_single_ipi().
  static func sendCallIPI(to cpu: CPUIndex)
  /// Interrupts every CPU in `cpus` likewise.
  /// Linux: arch_send_call_function_ipi_mask().
  static func sendCallIPI(toAll cpus: CPUSet)
  /// Makes `cpu` say where it is, for a report of a CPU that does not answer (Linux:
  /// trigger_single_cpu_backtrace()). Has a default: nothing.
  static func showWhereStuck(_ cpu: CPUIndex)
}

extension SMPPlatform {
  /// Nothing to show on a platform that cannot interrupt a stuck CPU.
  public static func showWhereStuck(_ cpu: CPUIndex) {}
}

/// Saved interrupt-enable state, opaque to portable code.
public struct InterruptState: Sendable {
  /// The platform's encoding (RFLAGS on x86-64).
  public let raw: UInt64

  /// Wraps a platform value.
  public init(raw: UInt64) { self.raw = raw }
}
