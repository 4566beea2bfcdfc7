/// What the scheduler needs from the machine beyond `SMPPlatform`: switching stacks, and
/// interrupting another CPU so that it looks at its run queue.
///
/// The kernel provides these in asm and Swift (Boot/switch.asm, Kernel/Arch/x86_64);
/// host tests can provide them with host threads handing one baton per fake CPU.
public protocol SchedPlatform: SMPPlatform {
  /// Saves the running context in `from.savedContext` and resumes `to` from
  /// `to.savedContext`; returns when something switches back to `from`. Interrupts
  /// off; `to` runs with the interrupt state it saved (a new thread: off).
  static func switchContext(
    from: UnsafeMutablePointer<KernelThread>, to: UnsafeMutablePointer<KernelThread>)
  /// Interrupts `cpu` so that it reschedules when the interrupt returns.
  /// Linux: smp_send_reschedule().
  static func sendReschedule(to cpu: CPUIndex)
  /// Arms `timer` on the running CPU's timer queue for `deadline` (nanoseconds on
  /// `nanoseconds()`'s clock); the hardware timer follows the earliest. Interrupts off.
  static func armTimer(_ timer: UnsafeMutablePointer<Timer>, deadline: UInt64)
  /// Disarms `timer` on the running CPU; false if it already fired. Interrupts off.
  static func cancelTimer(_ timer: UnsafeMutablePointer<Timer>) -> Bool
  /// A timer function that wakes the `KernelThread` its argument points to (through
  /// the platform's scheduler): C functions cannot be generic, so the platform names
  /// its own.
  static var wakeThreadTimerFunction: CallFunction { get }
  /// A timer function that asks the running CPU to reschedule: the tick.
  static var tickTimerFunction: CallFunction { get }
}
