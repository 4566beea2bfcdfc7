// Guarded kernel stacks (Kernel/Arch/x86_64/GuardedStacks.swift), in their own file so
// the matrix's groups stay one concept each.

extension Matrix {
  /// Unbounded recursion on a guarded stack (`ktest=fault_stack_overflow`): the page
  /// fault on its guard page must reach the panic report, on the #PF's own IST stack,
  /// and name the stack's owner; a double or triple fault fails.
  public static let stacks: [BootConfig] = [
    BootConfig(
      name: "fault-stack-overflow", smp: "2", append: "ktest=fault_stack_overflow",
      expectations: Expectations(
        outcome: .panic, mustContain: ["stack overflow of test_overflow/0", "exception 14"])),
    // A kernel thread's stack (Threads.create takes a guarded one): the report names
    // the thread, here on CPU 1 of 2.
    BootConfig(
      name: "fault-thread-overflow", smp: "2", append: "ktest=fault_thread_overflow",
      expectations: Expectations(
        outcome: .panic, mustContain: ["stack overflow of overflow-thread/1", "exception 14"])),
    // A stop_machine held in RUN by CPU 0: another CPU reports the CPU it waits for at a
    // tenth of stop_timeout_ms, then panics with the same words at the bound.
    BootConfig(
      name: "fault-stop-stall", smp: "4", append: "ktest=fault_stop_stall stop_timeout_ms=500",
      expectations: Expectations(
        outcome: .panic, mustContain: ["ms in RUN of stop #", "for CPUs 0 (1 of 4 not acknowledged)", "PANIC"])),
  ]
}
