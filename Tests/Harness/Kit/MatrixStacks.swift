// Guarded kernel stacks (Kernel/Arch/x86_64/GuardedStacks.swift) and W^X
// (KernelProtection.swift): memory protection, in its own file so the matrix's groups
// stay one concept each.

extension Matrix {
  /// Unbounded recursion on a guarded stack (`ktest=fault_stack_overflow`): the page
  /// fault on its guard page must reach the panic report, on the #PF's own IST stack,
  /// and name the stack's owner; a double or triple fault fails.
  public static let stacks: [BootConfig] = [
    BootConfig(
      name: "fault-stack-overflow", smp: "2", append: "ktest=fault_stack_overflow",
      expectations: Expectations(
        outcome: .panic, mustContain: ["stack overflow of test_overflow/0", "exception 14", "PANIC: end of report"])),
    // A kernel thread's stack (Threads.create takes a guarded one): the report names
    // the thread, here on CPU 1 of 2.
    BootConfig(
      name: "fault-thread-overflow", smp: "2", append: "ktest=fault_thread_overflow",
      expectations: Expectations(
        outcome: .panic, mustContain: ["stack overflow of overflow-thread/1", "exception 14", "PANIC: end of report"])),
    // The guard page below each kind of stack the kernel has: the boot CPU's (in the
    // image), an AP's own (the trampoline's pool; the cross-call runs on the stack the
    // idle AP was interrupted on), and an NMI's IST stack, whose overflow the page
    // fault's IST stack reports. Each report ends whole: the crash stop runs on the
    // page fault's stack too.
    protectionFault(
      "fault-boot-stack-overflow", smp: 2,
      ["write to an unmapped page at", "stack overflow of boot-stack/0, CPU 0's own stack"]),
    protectionFault(
      "fault-ap-stack-overflow", smp: 4,
      ["PANIC: CPU 3: exception 14", "stack overflow of ap-stack/", ", CPU 3's own stack"]),
    protectionFault(
      "fault-nmi-stack-overflow", smp: 4, ["PANIC: CPU 3: exception 14", "stack overflow of nmi-stack/3 "]),
    // The same under KVM: the NMI is the host's virtual NMI, and the guard page the
    // hardware's own page walk.
    {
      var config = protectionFault(
        "fault-nmi-stack-overflow", smp: 4, ["PANIC: CPU 3: exception 14", "stack overflow of nmi-stack/3 "])
      config.name = "fault-nmi-stack-overflow-kvm"
      config.requiresKVM = true
      config.timeout = .seconds(120)
      return config
    }(),
    // W^X: a store into kernel text, and a call into the heap.
    protectionFault(
      "fault-write-text", smp: 2, ["error 0x3", "page fault: write to a read-only page at", "(kernel text)"]),
    protectionFault(
      "fault-exec-heap", smp: 2,
      ["error 0x11", "page fault: instruction fetch from a no-execute page at", "(the identity map"]),
    // A stop_machine held in RUN by CPU 0: another CPU reports the CPU it waits for at a
    // tenth of stop_timeout_ms, then panics with the same words at the bound.
    BootConfig(
      name: "fault-stop-stall", smp: "4", append: "ktest=fault_stop_stall stop_timeout_ms=500",
      expectations: Expectations(
        outcome: .panic, mustContain: ["ms in RUN of stop #", "for CPUs 0 (1 of 4 not acknowledged)", "PANIC"])),
  ]

  /// A `fault_*` suite (Tests/KernelTests/ProtectionFaultSuites.swift): a panic whose
  /// report holds `lines` and ends whole.
  static func protectionFault(_ name: String, smp: Int, _ lines: [String]) -> BootConfig {
    BootConfig(
      name: name, smp: "\(smp)", append: "ktest=\(name.replacingOccurrences(of: "-", with: "_"))",
      expectations: Expectations(outcome: .panic, mustContain: lines + ["PANIC: end of report"]))
  }
}
