// One QEMU configuration of the test matrix and what its boot must show.

/// The QEMU machine type (`-machine`).
public enum Machine: String, Sendable {
  /// i440FX + PIIX, QEMU's default PC.
  case pc
  /// Q35 + ICH9, the PCIe machine.
  case q35
}

/// The QEMU accelerator (`-accel`).
public enum Accel: String, Sendable {
  /// Pure emulation; slow but always available, the default for tests.
  case tcg
  /// Hardware virtualisation; adds `-cpu host`.
  case kvm
}

/// How QEMU gets the kernel into memory.
public enum BootMedium: Equatable, Sendable {
  /// QEMU's own Multiboot loader: `-kernel IMAGE -append LINE`.
  case kernel
  /// The GRUB rescue image `make iso` builds, as a CD (`-cdrom`, no `-kernel`): the firmware
  /// boots GRUB, which loads the kernel with its own Multiboot loader and passes the command
  /// line baked into the image's grub.cfg (`ISO_APPEND`).
  case cdrom
}

/// How the boot must end, as told by QEMU's exit status (see `KernelExit`).
public enum Outcome: Sendable {
  /// Status 33, and every KTAP result ok when KTAP is present.
  case pass
  /// Status 35: the kernel's own tests reported a failure.
  case testsFail
  /// Status 37 and a complete `PANIC:` report.
  case panic
  /// Status 0 under `-no-reboot`: the CPU reset.
  case tripleFault
}

/// An AP that is expected to stay offline, and how fast the kernel must give up on it.
public struct DeadAPExpectation: Equatable, Sendable {
  /// The logical CPU number the kernel gave the AP.
  public var cpu: Int
  /// The AP's APIC ID.
  public var apic: UInt32
  /// Upper bound for the "ms since first INIT" the kernel reports.
  public var withinMs: Int

  /// Creates the expectation for CPU `cpu` with APIC ID `apic`, reported within `withinMs`.
  public init(cpu: Int, apic: UInt32, withinMs: Int) {
    self.cpu = cpu
    self.apic = apic
    self.withinMs = withinMs
  }
}

/// Lines that must each arrive whole: exactly `count` lines of the log start with `prefix`
/// and then consist of `body` (a regular expression for the rest of the line). A line
/// that two CPUs interleaved fails the pattern, so the count falls short.
public struct WholeLines: Equatable, Sendable {
  /// The fixed start of every such line.
  public var prefix: String
  /// A regular expression the rest of each line must match entirely.
  public var body: String
  /// How many such lines the boot prints.
  public var count: Int

  /// Creates the expectation.
  public init(prefix: String, body: String, count: Int) {
    self.prefix = prefix
    self.body = body
    self.count = count
  }
}

/// Everything a boot's exit status and serial log must show for its configuration to pass.
public struct Expectations: Equatable, Sendable {
  /// How the boot must end.
  public var outcome: Outcome
  /// Exact logical CPUs of the `smp: online` line; `Brought up N CPUs` must equal their count.
  public var onlineCPUs: [Int]?
  /// Exact APIC IDs of the `smp: online` line, in the same order as `onlineCPUs`.
  public var apicIDs: [UInt32]?
  /// Substrings that must each appear in the serial log.
  public var mustContain: [String]
  /// Substrings that must not appear in the serial log.
  public var mustNotContain: [String]
  /// KTAP suites that must appear (as `# Subtest:` names).
  public var ktapSuites: [String]
  /// An AP that must be reported as not coming online.
  public var deadAP: DeadAPExpectation?
  /// Lines that must arrive whole (line atomicity of the console).
  public var wholeLines: WholeLines?
  /// Whether the log must hold a `stoptrace` block that converts to a valid trace-event
  /// file (`StopTraceValidator.failures(inLog:)`).
  public var stopTrace: Bool
  /// The seconds of `ktest=soak` the log must show, its counters judged by `SoakJudge`.
  public var soakSeconds: Int?

  /// Creates expectations; everything but the outcome is optional.
  public init(
    outcome: Outcome = .pass, onlineCPUs: [Int]? = nil, apicIDs: [UInt32]? = nil,
    mustContain: [String] = [], mustNotContain: [String] = [], ktapSuites: [String] = [],
    deadAP: DeadAPExpectation? = nil, wholeLines: WholeLines? = nil, stopTrace: Bool = false,
    soakSeconds: Int? = nil
  ) {
    self.outcome = outcome
    self.onlineCPUs = onlineCPUs
    self.apicIDs = apicIDs
    self.mustContain = mustContain
    self.mustNotContain = mustNotContain
    self.ktapSuites = ktapSuites
    self.deadAP = deadAP
    self.wholeLines = wholeLines
    self.stopTrace = stopTrace
    self.soakSeconds = soakSeconds
  }
}

/// One QEMU configuration: the machine to boot and what the boot must show.
public struct BootConfig: Equatable, Sendable {
  /// Short, stable name; also names the log file `<name>.log`.
  public var name: String
  /// The `-smp` argument, e.g. `"4"` or `"6,sockets=2,cores=3"`.
  public var smp: String
  /// The `-machine` type.
  public var machine: Machine
  /// The `-m` argument.
  public var memory: String
  /// The kernel command line (`-append`). For a `.cdrom` boot it is not passed: it names
  /// the line the image must have been built with.
  public var append: String
  /// Wall-clock bound for the whole boot; QEMU is killed when it expires.
  public var timeout: Duration
  /// What the boot must show.
  public var expectations: Expectations
  /// More QEMU arguments, such as `["-machine", "acpi=off"]` (options of a repeated
  /// `-machine` merge) or `["-cpu", "qemu64,+x2apic"]`.
  public var qemuArguments: [String]
  /// Boot under KVM whatever `--accel` says; skipped where /dev/kvm is not usable.
  public var requiresKVM: Bool
  /// How QEMU loads the kernel.
  public var medium: BootMedium
  /// A conversation with the kernel's serial shell (`append` must hold `shell`): the console
  /// goes to a socket the harness talks through (`ShellSession`), and every failure of the
  /// script fails the configuration.
  public var shell: ShellScript?

  /// Creates a configuration; `timeout` defaults to `defaultTimeout(smp:)`.
  public init(
    name: String, smp: String, machine: Machine = .pc, memory: String = "128M",
    append: String = "", timeout: Duration? = nil, expectations: Expectations = Expectations(),
    qemuArguments: [String] = [], requiresKVM: Bool = false, medium: BootMedium = .kernel,
    shell: ShellScript? = nil
  ) {
    self.name = name
    self.smp = smp
    self.machine = machine
    self.memory = memory
    self.append = append
    self.timeout = timeout ?? BootConfig.defaultTimeout(smp: smp)
    self.expectations = expectations
    self.qemuArguments = qemuArguments
    self.requiresKVM = requiresKVM
    self.medium = medium
    self.shell = shell
  }

  /// The default wall-clock bound: 30 s, or 90 s from 64 vCPUs up (TCG runs vCPUs in turn).
  /// - Parameter smp: The `-smp` spec.
  /// - Returns: The bound for one boot.
  public static func defaultTimeout(smp: String) -> Duration {
    // The vCPU count is the spec's leading number ("6,sockets=2,cores=3" asks for 6).
    let vcpus = Int(smp.prefix { $0.isNumber }) ?? 1
    return vcpus >= 64 ? .seconds(90) : .seconds(30)
  }
}
