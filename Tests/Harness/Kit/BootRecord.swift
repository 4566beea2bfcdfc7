// What one boot left behind: how QEMU ended, the serial log, and QEMU's own error output.

/// How the QEMU process ended.
public enum Termination: Equatable, Sendable {
  /// QEMU exited with this status.
  case exited(Int32)
  /// QEMU died of a signal the harness did not send.
  case signaled(Int32)
  /// The wall-clock bound expired and the harness killed QEMU.
  case timedOut(Duration)
  /// QEMU could not be started at all.
  case failedToStart(String)
  /// The harness ended QEMU before it exited (a shell script that failed or ended without
  /// leaving QEMU; see `ProcessStopper`).
  case stopped
}

/// The meaning of QEMU's exit status under the kernel's contract: the kernel writes v to the
/// isa-debug-exit port 0xf4 and QEMU exits with (v << 1) | 1.
public enum KernelExit: Equatable, Sendable {
  /// v = 0x10, status 33: all tests passed / boot OK.
  case passed
  /// v = 0x11, status 35: some kernel test failed.
  case testsFailed
  /// v = 0x12, status 37: kernel panic.
  case panicked
  /// Status 0 under `-no-reboot`: the CPU reset after a triple fault.
  case tripleFault
  /// Any other status: QEMU itself failed (bad option, missing file, ...).
  case qemuError(Int32)

  /// Classifies a QEMU exit status.
  public init(status: Int32) {
    switch status {
    case 33: self = .passed
    case 35: self = .testsFailed
    case 37: self = .panicked
    case 0: self = .tripleFault
    default: self = .qemuError(status)
    }
  }

  /// The outcome this exit stands for; nil for a QEMU error.
  public var outcome: Outcome? {
    switch self {
    case .passed: .pass
    case .testsFailed: .testsFail
    case .panicked: .panic
    case .tripleFault: .tripleFault
    case .qemuError: nil
    }
  }

  /// A short phrase for failure reasons, e.g. `kernel panic (status 37)`.
  public var summary: String {
    switch self {
    case .passed: "boot OK (status 33)"
    case .testsFailed: "tests failed (status 35)"
    case .panicked: "kernel panic (status 37)"
    case .tripleFault: "triple fault (status 0)"
    case .qemuError(let status): "QEMU error (status \(status))"
    }
  }
}

/// Everything the judge needs about one finished boot.
public struct BootRecord: Sendable {
  /// How QEMU ended.
  public var termination: Termination
  /// The serial console.
  public var log: SerialLog
  /// What QEMU printed on stdout and stderr (its own messages, not the guest's).
  public var qemuOutput: String
  /// Wall-clock time from launch to exit.
  public var elapsed: Duration
  /// What the configuration's shell script found wrong (`ShellSession`); empty without one.
  public var shellFailures: [String]

  /// Creates a record.
  public init(
    termination: Termination, log: SerialLog, qemuOutput: String, elapsed: Duration,
    shellFailures: [String] = []
  ) {
    self.termination = termination
    self.log = log
    self.qemuOutput = qemuOutput
    self.elapsed = elapsed
    self.shellFailures = shellFailures
  }

  /// Whether the kernel got to run: false when QEMU failed to start, reported an error of its
  /// own, or died of a signal the harness did not send.
  public var kernelRan: Bool {
    switch termination {
    case .exited(let status): KernelExit(status: status).outcome != nil
    case .timedOut, .stopped: true
    case .signaled, .failedToStart: false
    }
  }
}

extension Termination {
  /// A short phrase for failure reasons: `boot OK (status 33)`, `killed after 30 s`.
  public var summary: String {
    switch self {
    case .exited(let status): KernelExit(status: status).summary
    case .signaled(let signal): "killed by signal \(signal)"
    case .timedOut(let bound): "killed after \(bound.boundText) s"
    case .failedToStart(let message): "did not start: \(message)"
    case .stopped: "stopped by the harness"
    }
  }
}

extension Duration {
  /// Seconds with one decimal, as the harness prints durations: `1.2 s`.
  public var secondsText: String {
    let tenths = (components.seconds * 10) + components.attoseconds / 100_000_000_000_000_000
    return "\(tenths / 10).\(tenths % 10) s"
  }

  /// Whole seconds if the duration is whole, else one decimal, without unit: `30`, `1.5`.
  public var boundText: String {
    let text = secondsText.dropLast(2)
    return text.hasSuffix(".0") ? String(text.dropLast(2)) : String(text)
  }
}
