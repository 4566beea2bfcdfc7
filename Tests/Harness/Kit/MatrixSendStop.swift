// smp_send_stop and the crash stop (`ktest=sendstop sendstop=<scenario>`): a stop is
// final, so every scenario is a boot of its own, at 2, 4 and 8 vCPUs under TCG, and again
// under KVM where /dev/kvm works. Tests/KernelTests/SendStopSuite.swift describes each.
//
// A test never fails on timing alone, and whether a vCPU gets its host's time within
// the default 10 ms is timing (a run of `make check` saw a 2-vCPU `heap_lock` boot miss
// both 10 ms attempts beside another QEMU). So every scenario waits 200 ms an attempt
// (`stop_timeout_us=200000`), and those that must not see an NMI (or a retry) 2 s; the
// default 10 ms is measured by `make bench` and shown by `make run`.

extension Matrix {
  /// Every scenario of the `sendstop` suite, in the order the matrix boots them.
  public static let sendStopScenarios: [String] = [
    "responsive", "busy", "irqs_off", "nmi_stuck", "late_ack", "two_callers", "crash_during_crash",
    "printer_midline", "heap_lock", "panic_ap", "wait_forever",
    "boot_before_init", "boot_wait_sipi", "boot_trampoline", "boot_before_online",
    "up_before_init", "up_wait_sipi", "up_trampoline", "up_before_online",
  ]

  /// The vCPU counts every scenario runs at.
  public static let sendStopVCPUs = [2, 4, 8]

  /// Every scenario at every count under TCG (`sendstop-<scenario>-<n>`).
  public static let sendStop: [BootConfig] = sendStopVCPUs.flatMap { vcpus in
    sendStopScenarios.map { sendStopConfig($0, vcpus: vcpus, kvm: false) }
  }

  /// The vCPU counts every scenario runs at under KVM: a nested KVM guest takes 4-9 s to
  /// boot here, so each count adds ~1.5 min to `make check`. 4 vCPUs give every scenario
  /// a third CPU (the stopping CPU apart from the starting one); 8 ran too until the
  /// check passed 10 minutes (11.0 min on a fresh clone with both); it never failed
  /// in any run so far.
  public static let sendStopKVMVCPUs = [4]

  /// The same under KVM with x2APIC (`sendstop-<scenario>-<n>-kvm`), skipped without
  /// /dev/kvm: there the NMI, INIT and SIPI are the hardware's own (nested).
  public static let sendStopKVM: [BootConfig] = sendStopKVMVCPUs.flatMap { vcpus in
    sendStopScenarios.map { sendStopConfig($0, vcpus: vcpus, kvm: true) }
  }

  /// The configuration of one scenario at `vcpus` vCPUs.
  public static func sendStopConfig(_ scenario: String, vcpus: Int, kvm: Bool) -> BootConfig {
    let last = vcpus - 1
    let others = "1-\(last)".replacingOccurrences(of: "1-1", with: "1")
    var append = "ktest=sendstop sendstop=\(scenario)"
    let noNMI = ["responsive", "busy", "printer_midline"].contains(scenario)
    if scenario != "wait_forever" { append += noNMI ? " stop_timeout_us=2000000" : " stop_timeout_us=200000" }
    var expectations = Expectations(ktapSuites: ["sendstop"])
    switch scenario {
    case "responsive", "busy":
      expectations.mustContain = ["smp: stopping secondary CPUs \(others) (attempt 1 of 2: stop vector)"]
      expectations.mustNotContain = ["Retrying SMP stop call...", "failed to stop"]
    case "irqs_off":
      expectations.mustContain = [
        "Retrying SMP stop call...", "(attempt 2 of 2: NMI)", "# CPU \(last): NMI after",
      ]
    case "nmi_stuck":
      // The last word on it names exactly that CPU.
      expectations.mustContain = [
        "smp: failed to stop secondary CPUs \(last) (CPU 0 waited", "attempt 2 of 2)", "; failed \(last)",
      ]
    case "late_ack":
      expectations.mustContain = ["Retrying SMP stop call...", "# CPU \(last): IPI after"]
    case "two_callers":
      expectations.mustContain = ["lost the race", ": caller after"]
    case "crash_during_crash":
      expectations = Expectations(
        outcome: .panic,
        mustContain: [
          "PANIC: CPU \(last): sendstop: first crash", "PANIC: CPU 0 stopped itself after",
          ", 0 not stopped", "PANIC: end of report",
        ],
        mustNotContain: ["second crash"])
    case "printer_midline":
      expectations.mustContain = [
        "console: CPU 0 took printing over from CPU \(last)",
        "was stalled mid-line holding the printer role when the stop came",
      ]
      expectations.wholeLines = WholeLines(
        prefix: "smp: stopping secondary CPUs ", body: #"[0-9,-]+ \(attempt 1 of 2: stop vector\)"#, count: 1)
    case "heap_lock":
      expectations.mustContain = ["holds the heap lock", "(attempt 2 of 2: NMI)", "# CPU \(last): NMI after"]
    case "panic_ap":
      expectations = Expectations(
        outcome: .panic,
        mustContain: [
          "PANIC: CPU \(last): sendstop: panic on an AP", "PANIC: CPU 0 stopped by ", ", 0 not stopped",
          "PANIC: end of report",
        ])
    case "wait_forever":
      append += " stop_retries=1 stop_wait=forever sendstop_hold_ms=2500"
      expectations.mustContain = [
        "smp: stop_wait=forever: CPU 0 still waits for CPUs \(last) after 1", "# CPU \(last): IPI after",
      ]
      expectations.mustNotContain = ["Retrying SMP stop call...", "failed to stop"]
    default:
      // The bring-up points: the AP ends parked or never started; at boot, the stop
      // comes before "Brought up".
      if scenario.hasSuffix("trampoline") || scenario.hasSuffix("before_online") {
        expectations.mustContain.append("# CPU \(last): parked after")
      }
      if scenario.hasPrefix("boot_") {
        expectations.mustNotContain = ["Brought up"]
      } else {
        expectations.mustContain.append("# cpu_up(\(last)) with a stop from CPU")
      }
    }
    if expectations.outcome == .pass && !scenario.hasPrefix("boot_") {
      expectations.onlineCPUs = Array(0..<vcpus)
    }
    if kvm { expectations.mustContain.append("APIC mode x2APIC") }
    return BootConfig(
      name: "sendstop-\(scenario.replacingOccurrences(of: "_", with: "-"))-\(vcpus)\(kvm ? "-kvm" : "")",
      smp: "\(vcpus)", append: append, timeout: .seconds(kvm ? 120 : 60), expectations: expectations,
      requiresKVM: kvm)
  }
}
