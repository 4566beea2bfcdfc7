// Per-CPU stoppers, stop_machine and CPU hotplug (Linux kernel/stop_machine.c semantics),
// in their own file so the matrix's groups stay one concept each.
//
// Timeouts are for TCG on two host cores with a second QEMU beside it (`check --jobs 2`):
// every stop_machine needs every vCPU scheduled, so its cost grows with the vCPU count.
// The `stop` suite makes 10^4 stop_machine runs; at 8 vCPUs that was budgeted at ~120 s.

extension Matrix {
  /// The `stop` suite (`ktest=stop`): stop_one_cpu, stop_two_cpus, stop_cpus and
  /// stop_machine with their error paths, on 1 to 8 vCPUs.
  public static let stop: [BootConfig] = [1, 2, 3, 4, 8].map { count in
    stopConfig("stop-\(count)", vcpus: count, append: "ktest=stop", suites: ["stop"])
  }

  /// CPU hotplug (`ktest=hotplug`): taking CPUs down and up again through the stoppers.
  /// From 2 vCPUs: the last online CPU cannot go down.
  public static let hotplug: [BootConfig] = [2, 4, 8].map { count in
    stopConfig("hotplug-\(count)", vcpus: count, append: "ktest=hotplug", suites: ["hotplug"])
  }

  /// Random stop requests and hotplug from every CPU at once (`ktest=stop_torture`),
  /// 3000 operations per configuration (at most 60 s of starting them), every one
  /// checked, after the two bugs it found made deterministic
  /// (`stop_torture_regressions`); `torture_seed=` from the log repeats a run's choices.
  public static let stopTorture: [BootConfig] = [2, 4, 8].map { count in
    stopConfig(
      "stop-torture-\(count)", vcpus: count,
      append: "ktest=stop_torture_regressions,stop_torture torture_ops=3000",
      suites: ["stop_torture_regressions", "stop_torture"])
  }

  /// The `stop` and `hotplug` suites under KVM with x2APIC, set up as
  /// `sched-4-x2apic-kvm`: every halt and IPI is a VM exit on this nested host, a
  /// thousand times dearer than under TCG, hence the long bound.
  public static let stopKVM: [BootConfig] = [
    BootConfig(
      name: "stop-4-x2apic-kvm", smp: "4", append: "ktest=stop,hotplug stop_runs=500", timeout: .seconds(300),
      expectations: Expectations(
        onlineCPUs: [0, 1, 2, 3], mustContain: ["APIC mode x2APIC"],
        ktapSuites: ["stop", "hotplug"]),
      requiresKVM: true)
  ]

  /// One stop_machine traced across 8 vCPUs (`ktest=stop_trace`): besides the suite's
  /// own result, its `stoptrace` block must convert to a valid trace-event file (what
  /// `make trace` writes).
  public static let trace: [BootConfig] = [traceConfig(vcpus: 8)]

  /// The configuration `trace-<vcpus>`: `ktest=stop_trace` on a plain PC, the `stop_trace`
  /// suite passing, every CPU online and its trace valid (`Expectations.stopTrace`).
  /// - Parameter vcpus: The vCPU count.
  /// - Returns: The configuration; `lockstep-harness trace` boots the same.
  public static func traceConfig(vcpus: Int) -> BootConfig {
    BootConfig(
      name: "trace-\(vcpus)", smp: "\(vcpus)", append: "ktest=stop_trace",
      timeout: .seconds(60),
      expectations: Expectations(
        onlineCPUs: Array(0..<vcpus), ktapSuites: ["stop_trace"], stopTrace: true))
  }

  /// The bound for a stop or hotplug suite on `vcpus` vCPUs: 45 s plus 15 s a vCPU
  /// (165 s at 8).
  public static func stopTimeout(vcpus: Int) -> Duration {
    .seconds(45 + 15 * vcpus)
  }

  private static func stopConfig(
    _ name: String, vcpus: Int, append: String, suites: [String]
  ) -> BootConfig {
    BootConfig(
      name: name, smp: "\(vcpus)", append: append, timeout: stopTimeout(vcpus: vcpus),
      expectations: Expectations(onlineCPUs: Array(0..<vcpus), ktapSuites: suites))
  }
}
