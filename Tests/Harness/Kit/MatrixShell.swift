// The serial shell (`shell` on the command line), driven through the console socket by a
// script (ShellScript.swift): every command and every error the shell names, in its own
// file so the matrix's groups stay one concept each. `make shell-check` boots only these.
//
// Bounds are for TCG on two loaded host cores: `torture 2` needs its 2 s and the setup,
// `bench` takes several seconds under TCG, a stop_machine needs every vCPU scheduled.

extension Matrix {
  /// The shell on 4, 2 and 1 vCPUs under TCG, and on 4 under KVM where /dev/kvm works.
  public static let shell: [BootConfig] = [shell4, shellPanic2, shellExit1, shellQ35, shellPolled1, shell4KVM]

  /// Every command and every error on 4 vCPUs, CPU 1 taken offline and back, ending in
  /// `sendstop`, which stops the other CPUs for good and leaves QEMU.
  public static var shell4: BootConfig {
    let steps: [ShellStep] =
      [helpStep, cpusStep]
      + [
        .answer("call 1", "call: CPU 1 ran the function; round trip ", " us"),
        // The calling CPU itself: run in place, as Linux's smp_call_function_single does.
        .answer("call 0", "call: CPU 0 ran the function"),
        .error("call 9", "error: CPU 9 does not exist (CPUs are 0-3)"),
        // Past any integer type: refused by its digits, not wrapped round to a CPU.
        .error("call 18446744073709551617", "error: CPU 18446744073709551617 does not exist (CPUs are 0-3)"),
        .error("call -1", "error: '-1' is not a CPU number"),
        .error("call 1 2", "error: call takes one argument"),
        .error("cpus now", "error: cpus takes no argument"),
        // Blanks around and between words, tabs included.
        .answer("  call \t 1  ", "call: CPU 1 ran the function"),
        // An arrow key (ESC [ A) and a UTF-8 character leave nothing in the line.
        .answer("\u{1b}[Acp\u{e9}us", "CPU  APIC  state"),
        .error("call x", "error: 'x' is not a CPU number"),
        .error("call", "error: call needs a CPU number"),
        .error("frob", "error: unknown command 'frob'; type help"),
        // An empty line: nothing to run, the prompt again.
        ShellStep("", reject: ["error: "]),
        // Line editing: the backspace takes the `z` back, the line reads `cpus`.
        .answer("cpuz\u{7f}s", "CPU  APIC  state"),
        .error(String(repeating: "x", count: 130), "error: line too long (at most 120 characters)"),
        .error("torture 0", "error: torture takes 1 to 600 seconds"),
        .error("torture 100000", "error: torture takes 1 to 600 seconds"),
        .error("torture abc", "error: 'abc' is not a number of seconds"),
        .error("offline 0", "error: CPU 0 runs 1 thread(s) of its own", "the shell is one"),
      ] + hotplugSteps + errorsWhileOffline + [
        .answer("online 1", "online: CPU 1 is online"),
        .answer("call 1", "call: CPU 1 ran the function; round trip "),
        stopStep,
        // Every sample of every figure taken: the kernel names the ones that failed.
        ShellStep(
          "bench", expect: ["bench: ", "median", "p99", "(200 samples)", "(50 samples)", "(20 samples)"],
          reject: ["error: ", " failed)"], bound: .seconds(60)),
        .answer("torture 2", "torture: ", " 0 errors", "torture: passed", bound: .seconds(60)),
        sendStopStep,
      ]
    return shellConfig("shell-4", vcpus: 4, steps: steps, timeout: .seconds(180))
  }

  /// `help`, then `panic`: the report, and status 37.
  public static var shellPanic2: BootConfig {
    let panic = ShellStep.leaving(
      "panic", .panic, expect: ["panic: a deliberate panic from the shell", "PANIC"])
    return shellConfig("shell-panic-2", vcpus: 2, steps: [helpStep, panic], timeout: .seconds(120))
  }

  /// The Q35 machine's I/O APIC and MADT: input by interrupt there too.
  public static var shellQ35: BootConfig {
    let steps: [ShellStep] = [
      cpusStep, .answer("call 1", "call: CPU 1 ran the function"), .leaving("exit", .pass, expect: ["exit: leaving QEMU"]),
    ]
    var config = shellConfig("shell-2-q35", vcpus: 2, steps: steps, timeout: .seconds(120))
    config.machine = .q35
    return config
  }

  /// No ACPI, so no MADT and no I/O APIC to route COM1's interrupt: the shell says so and
  /// polls the UART instead, and works the same.
  public static var shellPolled1: BootConfig {
    let steps: [ShellStep] = [
      helpStep, cpusStep, .error("call 1", "error: CPU 1 does not exist (CPUs are 0-0)"),
      .leaving("exit", .pass, expect: ["exit: leaving QEMU"]),
    ]
    var config = shellConfig("shell-polled-1", vcpus: 1, steps: steps, timeout: .seconds(120))
    config.qemuArguments = ["-machine", "acpi=off"]
    config.expectations.mustContain = [
      "shell: Lockstep shell on CPU 0; type 'help'", "shell: input polled every 10 ms: no MADT, so no I/O APIC to route COM1 through",
    ]
    config.expectations.wholeLines = WholeLines(
      prefix: "shell: input: ", body: #"[1-9]\d* bytes, 0 taken by 0 receive interrupts, [1-9]\d* found by polling, 0 dropped"#,
      count: 1)
    return config
  }

  /// One CPU alone: nothing to call or take offline but itself, then `exit`.
  public static var shellExit1: BootConfig {
    let steps: [ShellStep] = [
      cpusStep,
      .answer("call 0", "call: CPU 0 ran the function"),
      .error("offline 0", "CPU 0"),
      stopStep,
      .leaving("exit", .pass, expect: ["exit: leaving QEMU"]),
    ]
    return shellConfig("shell-exit-1", vcpus: 1, steps: steps, timeout: .seconds(120))
  }

  /// The common commands under KVM with the host's CPU model (x2APIC).
  public static var shell4KVM: BootConfig {
    let steps: [ShellStep] = [
      helpStep, cpusStep, .answer("call 1", "call: CPU 1 ran the function; round trip "),
      hotplugSteps[0], .answer("online 1", "online: CPU 1 is online"), stopStep, sendStopStep,
    ]
    var config = shellConfig("shell-4-kvm", vcpus: 4, steps: steps, timeout: .seconds(180))
    config.expectations.mustContain.append("APIC mode x2APIC")
    config.requiresKVM = true
    return config
  }

  /// `help` names every command.
  private static var helpStep: ShellStep {
    .answer(
      "help", "cpus", "call CPU", "stop", "offline CPU", "online CPU", "bench", "torture SECONDS",
      "sendstop", "panic", "exit")
  }

  /// `cpus`: the table's header and an online CPU.
  private static var cpusStep: ShellStep {
    .answer("cpus", "CPU  APIC  state", "online")
  }

  /// CPU 1 offline, then shown `dead` in the table.
  private static var hotplugSteps: [ShellStep] {
    [
      .answer("offline 1", "offline: CPU 1 is offline", bound: .seconds(30)),
      .answer("cpus", "CPU  APIC  state", "dead"),
    ]
  }

  /// What an offline CPU 1 refuses.
  private static var errorsWhileOffline: [ShellStep] {
    [
      .error("offline 1", "error: CPU 1 is not online"),
      .error("call 1", "error: CPU 1 is not online"),
    ]
  }

  /// One stop_machine across the online CPUs, its table checked by the kernel.
  private static var stopStep: ShellStep {
    .answer("stop", "every CPU saw the states in order", bound: .seconds(30))
  }

  /// `sendstop`: the other CPUs stopped for good, then status 33.
  private static var sendStopStep: ShellStep {
    .leaving(
      "sendstop", .pass,
      expect: ["sendstop: stopping every other CPU for good", "leaving QEMU"])
  }

  /// The shell's closing line when the input came by interrupt: every byte typed taken
  /// by the interrupt handler, none found by the reader's backstop look at the UART, none
  /// dropped.
  static let inputByInterrupt = WholeLines(
    prefix: "shell: input: ",
    body: #"([1-9]\d*) bytes, \1 taken by [1-9]\d* receive interrupts, 0 found by polling, 0 dropped"#,
    count: 1)

  /// A shell configuration: `-append shell` on a plain PC, every CPU online, ending as its
  /// script's last step says.
  /// - Parameters:
  ///   - name: The configuration's name.
  ///   - vcpus: The vCPU count.
  ///   - steps: The script's steps; the last one leaves QEMU.
  ///   - timeout: The bound of the whole boot.
  /// - Returns: The configuration.
  static func shellConfig(
    _ name: String, vcpus: Int, steps: [ShellStep], timeout: Duration
  ) -> BootConfig {
    let script = ShellScript(steps: steps)
    // A panic leaves without the shell's closing line.
    let leavingShell = script.outcome != .panic
    return BootConfig(
      name: name, smp: "\(vcpus)", append: "shell", timeout: timeout,
      expectations: Expectations(
        outcome: script.outcome ?? .pass, onlineCPUs: Array(0..<vcpus),
        mustContain: [
          "shell: Lockstep shell on CPU 0; type 'help'",
          "shell: input by interrupt: COM1 (ISA IRQ 4) -> I/O APIC GSI 4 -> vector 0x34 on CPU 0",
        ],
        // The receive interrupt brought every byte: a shell that only worked through the
        // reader's backstop (a wrong route, vector or UART setting) fails here.
        wholeLines: leavingShell ? inputByInterrupt : nil),
      shell: script)
  }
}
