// The serial shell (`shell` on the command line), driven through the console socket by a
// script (ShellScript.swift): every command and every error the shell names, in its own
// file so the matrix's groups stay one concept each. `make shell-check` boots only these.
//
// Bounds are for TCG on two loaded host cores: `torture 2` needs its 2 s and the setup,
// `bench` takes several seconds under TCG, a stop_machine needs every vCPU scheduled.

extension Matrix {
  /// The shell on 4, 2 and 1 vCPUs under TCG, and on 4 under KVM where /dev/kvm works.
  public static let shell: [BootConfig] = [shell4, shellPanic2, shellExit1, shell4KVM]

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
        .error("torture abc"),
        .error("offline 0", "CPU 0"),
      ] + hotplugSteps + errorsWhileOffline + [
        .answer("online 1", "online: CPU 1 is online"),
        .answer("call 1", "call: CPU 1 ran the function; round trip "),
        stopStep,
        .answer("bench", "bench: ", "median", "p99", bound: .seconds(60)),
        .answer("torture 2", "torture: ", " 0 errors", bound: .seconds(60)),
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
    return BootConfig(
      name: name, smp: "\(vcpus)", append: "shell", timeout: timeout,
      expectations: Expectations(
        outcome: script.outcome ?? .pass, onlineCPUs: Array(0..<vcpus),
        mustContain: ["shell: Lockstep shell on CPU 0; type 'help'"]),
      shell: script)
  }
}
