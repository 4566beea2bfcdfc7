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
        outcome: .panic, mustContain: ["stack overflow of test_overflow/0", "exception 14"]))
  ]
}
