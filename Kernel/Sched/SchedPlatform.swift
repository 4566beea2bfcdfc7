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
}
