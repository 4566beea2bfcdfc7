// The configurations `lockstep-harness check` boots. To extend the matrix, add a group below
// (or a config to a group) and list it in `standard`; names must stay short, stable and unique.

/// The matrix of QEMU configurations.
public enum Matrix {
  /// Every configuration `check` boots, in the order it reports them.
  public static let standard: [BootConfig] =
    scaling + largest + machines + firmware + bootloader + commandLine + deadAP + slowAP + timeouts + faults
    + console + crossCalls + torture + sched + demo + stacks + stop + hotplug + stopTorture
    + stopKVM + trace + soak + sendStop + sendStopKVM + shell

  /// The boot suite on a plain `-smp n` PC: QEMU numbers the APIC IDs 0..<n.
  public static let scaling: [BootConfig] = [1, 2, 3, 4, 8, 16, 64].map { count in
    .bootSuite("smp-\(count)-pc", smp: "\(count)", online: Array(0..<count))
  }

  /// The largest machines QEMU builds: 255 vCPUs under TCG (xAPIC IDs 0-254), and 288
  /// with x2APIC under KVM, where APs arrive over most of a second on a loaded host and
  /// the bring-up wait must last while they keep coming.
  public static let largest: [BootConfig] = [
    BootConfig(
      name: "smp-255-pc", smp: "255", memory: "256M", append: "ktest=boot",
      timeout: .seconds(120),
      expectations: Expectations(
        onlineCPUs: Array(0..<255), apicIDs: (0..<255).map { UInt32($0) }, ktapSuites: ["boot"])),
    BootConfig(
      name: "smp-288-x2apic-kvm", smp: "288", machine: .q35, memory: "512M", append: "ktest=boot",
      timeout: .seconds(300),
      expectations: Expectations(
        onlineCPUs: Array(0..<288), apicIDs: (0..<288).map { UInt32($0) },
        mustContain: ["APIC mode x2APIC"], ktapSuites: ["boot"]),
      qemuArguments: [
        "-cpu", "qemu64,+x2apic", "-machine", "kernel-irqchip=split",
        "-device", "intel-iommu,intremap=on,eim=on",
      ],
      requiresKVM: true),
  ]

  /// Other machine types and CPU topologies.
  public static let machines: [BootConfig] = [
    .bootSuite("smp-4-q35", smp: "4", machine: .q35, online: [0, 1, 2, 3]),
    // Two sockets of three cores: the core field is 2 bits wide, so socket 1 starts at APIC 4.
    .bootSuite(
      "smp-6-sparse", smp: "6,sockets=2,cores=3", online: Array(0..<6), apic: [0, 1, 2, 4, 5, 6]),
  ]

  /// What the firmware tells the kernel: no ACPI at all, and x2APIC mode (KVM only:
  /// QEMU 7.2's TCG does not offer x2APIC).
  public static let firmware: [BootConfig] = [
    BootConfig(
      name: "no-acpi", smp: "4", append: "ktest=boot",
      expectations: Expectations(
        onlineCPUs: [0], apicIDs: [0], mustContain: ["acpi: no valid RSDP", "boot CPU alone"],
        ktapSuites: ["boot"]),
      qemuArguments: ["-machine", "acpi=off"]),
    BootConfig(
      name: "x2apic-kvm", smp: "2", machine: .q35, append: "ktest=boot",
      expectations: Expectations(
        onlineCPUs: [0, 1], apicIDs: [0, 1], mustContain: ["APIC mode x2APIC"],
        ktapSuites: ["boot"]),
      qemuArguments: ["-cpu", "qemu64,+x2apic"], requiresKVM: true),
  ]

  /// A real boot loader: the firmware boots `make iso`'s GRUB image from a CD and GRUB loads
  /// the kernel through its own Multiboot loader, so the info structure, memory map and
  /// command line (`ISO_APPEND`, by default `ktest=boot,ipi`) are GRUB's, not QEMU's. With
  /// no image the configuration fails, naming the missing file.
  public static let bootloader: [BootConfig] = [
    BootConfig(
      name: "iso-4", smp: "4", append: "ktest=boot,ipi", timeout: .seconds(60),
      expectations: Expectations(
        onlineCPUs: [0, 1, 2, 3], apicIDs: [0, 1, 2, 3],
        mustContain: ["cmdline: ktest=boot,ipi", "Brought up 4 CPUs", "W+X mappings: none"],
        ktapSuites: ["boot", "ipi"]),
      medium: .cdrom)
  ]

  /// Command-line parameters that limit (or fail to limit) the CPUs brought up, on `-smp 4`.
  public static let commandLine: [BootConfig] = [
    .bootSuite("nosmp", smp: "4", extraAppend: "nosmp", online: [0]),
    .bootSuite("maxcpus-0", smp: "4", extraAppend: "maxcpus=0", online: [0]),
    .bootSuite("maxcpus-2", smp: "4", extraAppend: "maxcpus=2", online: [0, 1]),
    .bootSuite("nr-cpus-3", smp: "4", extraAppend: "nr_cpus=3", online: [0, 1, 2]),
    .bootSuite(
      "maxcpus-malformed", smp: "4", extraAppend: "maxcpus=abc", online: [0, 1, 2, 3],
      mustContain: ["maxcpus=abc"]),
    .bootSuite(
      "nr-cpus-negative", smp: "4", extraAppend: "nr_cpus=-1", online: [0, 1, 2, 3],
      mustContain: ["nr_cpus=-1"]),
    .bootSuite(
      "unknown-params", smp: "2", extraAppend: "frobnicate=1 frobnicate=2 quiet",
      online: [0, 1],
      mustContain: ["unknown parameter 'frobnicate' ignored", "unknown parameter 'quiet' ignored"]),
  ]

  /// An AP that the kernel is told to treat as dead must be given up on, promptly.
  public static let deadAP: [BootConfig] = [
    BootConfig(
      name: "dead-ap-2", smp: "4", append: "test_dead_ap=2 ktest=boot",
      expectations: Expectations(
        onlineCPUs: [0, 1, 3], apicIDs: [0, 1, 3], ktapSuites: ["boot"],
        deadAP: DeadAPExpectation(cpu: 2, apic: 2, withinMs: 1000)))
  ]

  /// One AP made slow on purpose (`test_slow_ap=CPU:MS`) arrives before the quiet bound
  /// (`ap_timeout_ms=100`), right across it (racing the retry's claim, and again the
  /// retry's own bound), or well after both. Whatever the race's outcome, the `boot`
  /// suite's `every_ap_has_one_verdict` must find every AP online and answering, or
  /// failed and reported: never counted online without running.
  public static let slowAP: [BootConfig] = [
    .bootSuite(
      "slow-ap-before-4", smp: "4", extraAppend: "test_slow_ap=2:50 ap_timeout_ms=100",
      online: [0, 1, 2, 3]),
    BootConfig(
      name: "slow-ap-across-4", smp: "4", append: "test_slow_ap=2:100 ap_timeout_ms=100 ktest=boot",
      expectations: Expectations(ktapSuites: ["boot"])),
    BootConfig(
      name: "slow-ap-across-8", smp: "8", append: "test_slow_ap=5:104 ap_timeout_ms=100 ktest=boot",
      expectations: Expectations(ktapSuites: ["boot"])),
    BootConfig(
      name: "slow-ap-after-8", smp: "8", append: "test_slow_ap=3:2000 ap_timeout_ms=100 ktest=boot",
      expectations: Expectations(
        onlineCPUs: [0, 1, 2, 4, 5, 6, 7], apicIDs: [0, 1, 2, 4, 5, 6, 7],
        mustContain: ["retrying with the SDM's delays: CPUs 3", "offline after bring-up: cpus=3"],
        ktapSuites: ["boot"], deadAP: DeadAPExpectation(cpu: 3, apic: 3, withinMs: 1000))),
    // What `make run APPEND='ap_timeout_ms=1'` boots: whatever misses the 1 ms bound is
    // reported offline, and the demo's calls among the online CPUs all arrive.
    BootConfig(
      name: "demo-4-ap-timeout-1", smp: "4", append: "ap_timeout_ms=1",
      expectations: Expectations(mustContain: ["calls in all, as expected"])),
  ]

  /// Timeouts of zero or absurd size are refused with a message and the default kept;
  /// `panic_on_ipistall=` ends a stalled cross-call wait in a panic report (the `ipi`
  /// suite's watchdog case stalls its target 300 ms).
  public static let timeouts: [BootConfig] = [
    .bootSuite(
      "timeouts-zero", smp: "2",
      extraAppend:
        "ap_timeout_ms=0 csd_timeout_ms=0 panic_on_ipistall=999999999 test_slow_ap=1:x stop_timeout_ms=0 stop_runs=0 stop_retries=0 stop_timeout_us=0 stop_wait=sometimes soak_seconds=0",
      online: [0, 1],
      mustContain: [
        "ap_timeout_ms=0: out of range", "csd_timeout_ms=0: out of range",
        "panic_on_ipistall=999999999: out of range", "test_slow_ap=1:x: malformed",
        "stop_timeout_ms=0: out of range", "stop_runs=0: out of range", "stop_retries=0: out of range",
        "stop_timeout_us=0: out of range", "stop_wait=sometimes: the only value is 'forever'; ignored",
        "soak_seconds=0: out of range",
      ]),
    BootConfig(
      name: "ipi-csd-1ms", smp: "2", append: "csd_timeout_ms=1 ktest=ipi",
      expectations: Expectations(onlineCPUs: [0, 1], apicIDs: [0, 1], ktapSuites: ["ipi"])),
    BootConfig(
      name: "ipi-panic-on-stall", smp: "2", append: "panic_on_ipistall=200 ktest=ipi",
      expectations: Expectations(
        outcome: .panic, mustContain: ["panic_on_ipistall=200", "csd: CPU 0 waited"])),
  ]

  /// Every CPU prints 20 long lines at once (`ktest=console`); each must arrive whole.
  public static let console: [BootConfig] = [8, 64].map { count in
    BootConfig(
      name: "console-\(count)", smp: "\(count)", append: "ktest=console",
      expectations: Expectations(
        ktapSuites: ["console"],
        wholeLines: WholeLines(
          prefix: "    # console-burst ",
          body: "cpu=[0-9]+ seq=[0-9]+ (0123456789abcdefghijklmnopqrstuvwxyz){2}",
          count: count * 20)))
  }

  /// The `ipi` suite: every cross-call API and its error paths. With `maxcpus=2` on 4
  /// vCPUs, CPUs 2 and 3 exist but are offline, for the offline error paths. The
  /// watchdog case must leave its report and its late completion in the log.
  public static let crossCalls: [BootConfig] =
    [1, 2, 4, 8].map { count in
      ipi("ipi-\(count)", smp: count, append: "ktest=ipi", online: Array(0..<count))
    } + [ipi("ipi-maxcpus-2", smp: 4, append: "maxcpus=2 ktest=ipi", online: [0, 1])] + [ipiKVM]

  /// The `ipi` suite under KVM with the host's CPU model (x2APIC): IPIs through the
  /// x2APIC ICR, delivered by the host's own interrupt virtualisation. Skipped where
  /// /dev/kvm is not usable.
  public static var ipiKVM: BootConfig {
    var config = ipi("ipi-4-kvm", smp: 4, append: "ktest=ipi", online: [0, 1, 2, 3])
    config.expectations.mustContain.append("APIC mode x2APIC")
    config.requiresKVM = true
    config.timeout = .seconds(120)
    return config
  }

  private static func ipi(_ name: String, smp: Int, append: String, online: [Int]) -> BootConfig {
    let watchdogLines =
      online.count > 1
      ? ["csd: CPU 0 waiting", "completed late", "raised 1 IPI(s)"] : [String]()
    return BootConfig(
      name: name, smp: "\(smp)", append: append,
      expectations: Expectations(
        onlineCPUs: online, apicIDs: online.map { UInt32($0) }, mustContain: watchdogLines,
        ktapSuites: ["ipi"]))
  }

  /// What `make run` boots: no tests, the cross-call demo, which checks its own counts.
  public static let demo: [BootConfig] = [
    BootConfig(
      name: "demo-4", smp: "4",
      expectations: Expectations(
        onlineCPUs: [0, 1, 2, 3], apicIDs: [0, 1, 2, 3],
        mustContain: [
          "Brought up 4 CPUs", "ipi: 12 calls in all, as expected",
          "demo: smp_send_stop stopped 3 of 3 other CPUs in",
        ]))
  ]

  /// Random cross-calls from every CPU at once (after Linux's scftorture), 10^5 calls
  /// per configuration, every one checked.
  public static let torture: [BootConfig] = [2, 3, 4, 8].map { count in
    BootConfig(
      name: "torture-\(count)", smp: "\(count)", append: "ktest=torture torture_ops=100000",
      expectations: Expectations(mustContain: [" 0 errors"], ktapSuites: ["torture"]))
  }

  /// Kernel threads (`ktest=sched`): binding, completions across CPUs, preemption.
  /// The last one under KVM with x2APIC: IPIs through the x2APIC ICR (fenced), and
  /// halts and IPIs a thousand times dearer than under TCG (the ping-pong stops at its
  /// 20 s cap there).
  public static let sched: [BootConfig] =
    [1, 2, 4, 8].map { count in
      BootConfig(
        name: "sched-\(count)", smp: "\(count)", append: "ktest=sched",
        expectations: Expectations(onlineCPUs: Array(0..<count), ktapSuites: ["sched"]))
    } + [
      BootConfig(
        name: "sched-4-x2apic-kvm", smp: "4", append: "ktest=sched", timeout: .seconds(180),
        expectations: Expectations(
          onlineCPUs: [0, 1, 2, 3], mustContain: ["APIC mode x2APIC"], ktapSuites: ["sched"]),
        requiresKVM: true)
    ]

  /// Injected faults: each must end in a panic report, or in a reset for the triple fault.
  public static let faults: [BootConfig] = [
    BootConfig(
      name: "fault-ud", smp: "2", append: "ktest=fault_ud",
      expectations: Expectations(outcome: .panic, mustContain: ["exception 6", "#UD"])),
    BootConfig(
      name: "fault-pf", smp: "2", append: "ktest=fault_pf",
      expectations: Expectations(
        outcome: .panic,
        mustContain: ["exception 14", "CR2=0x", "page fault: read from an unmapped page at", "PANIC: end of report"])),
    BootConfig(
      name: "fault-triple", smp: "2", append: "ktest=fault_triple",
      expectations: Expectations(outcome: .tripleFault)),
    // An AP faulting at its first Swift instruction, before it knows its CPU number
    // or has its own descriptors: a report naming it by APIC ID, not a triple fault.
    BootConfig(
      name: "fault-early-ap", smp: "4", append: "test_early_ap_fault=2",
      expectations: Expectations(
        outcome: .panic, mustContain: ["PANIC: unknown CPU (APIC 2): exception 6"])),
  ]
}

extension BootConfig {
  /// A configuration that runs the `boot` KTAP suite and expects it to pass with exactly
  /// `online` CPUs up.
  /// - Parameters:
  ///   - name: The configuration's name.
  ///   - smp: The `-smp` spec.
  ///   - machine: The machine type.
  ///   - extraAppend: Parameters placed before `ktest=boot` on the command line.
  ///   - online: The logical CPUs that must come online.
  ///   - apic: Their APIC IDs; defaults to the CPU numbers (a plain `-smp n`).
  ///   - mustContain: Substrings the log must contain, besides the W+X walk's verdict
  ///     (`W+X mappings: none`), which every boot-suite configuration checks.
  /// - Returns: The configuration.
  public static func bootSuite(
    _ name: String, smp: String, machine: Machine = .pc, extraAppend: String = "",
    online: [Int], apic: [UInt32]? = nil, mustContain: [String] = []
  ) -> BootConfig {
    let append = extraAppend.isEmpty ? "ktest=boot" : "\(extraAppend) ktest=boot"
    return BootConfig(
      name: name, smp: smp, machine: machine, append: append,
      expectations: Expectations(
        onlineCPUs: online, apicIDs: apic ?? online.map { UInt32($0) },
        mustContain: ["W+X mappings: none"] + mustContain, ktapSuites: ["boot"]))
  }
}
