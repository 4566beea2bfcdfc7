import Foundation

// Boots one configuration in QEMU and collects what it left behind.

/// Boots configurations, keeping each serial log as `<logDirectory>/<name>.log` and QEMU's own
/// output as `<logDirectory>/<name>.qemu`.
public struct Booter: Sendable {
  /// The QEMU, kernel and accelerator shared by every boot.
  public var command: QEMUCommand
  /// Where logs are kept.
  public var logDirectory: String

  /// Creates a booter.
  public init(command: QEMUCommand, logDirectory: String) {
    self.command = command
    self.logDirectory = logDirectory
  }

  /// The serial log path of `config`.
  public func logPath(of config: BootConfig) -> String {
    "\(logDirectory)/\(config.name).log"
  }

  /// Boots `config` once, within its bound, holding its shell conversation if it has one.
  /// Blocks the calling thread.
  /// - Parameters:
  ///   - config: The configuration.
  ///   - live: Whether the console also streams to stdout (see `SerialSink.console`); not
  ///     for a configuration with a shell script, whose console is the harness's.
  /// - Returns: The record to judge.
  public func boot(_ config: BootConfig, live: Bool = false) -> BootRecord {
    let log = logPath(of: config)
    let qemuOutput = "\(logDirectory)/\(config.name).qemu"
    let manager = FileManager.default
    try? manager.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
    // A stale log from an earlier run must not be judged if QEMU never gets to write one.
    try? manager.removeItem(atPath: log)
    let sink: SerialSink = live ? .console(logPath: log) : .file(log)
    // A configuration that boots the GRUB image fails, never skips, when there is none.
    if config.medium == .cdrom && !manager.fileExists(atPath: command.iso) {
      return BootRecord(
        termination: .failedToStart("no ISO image at \(command.iso); `make iso` builds it"),
        log: SerialLog(""), qemuOutput: "", elapsed: .zero)
    }
    let clock = ContinuousClock()
    let start = clock.now
    let termination: Termination
    let shellFailures: [String]
    if let script = config.shell {
      let result = ShellSession.run(
        script, qemu: command.qemu,
        arguments: { command.arguments(for: config, serial: .socket(path: $0)) },
        socketPath: "\(logDirectory)/\(config.name).sock", logPath: log, outputPath: qemuOutput,
        bound: config.timeout)
      termination = result.termination
      shellFailures = result.failures
    } else {
      termination = BoundedProcess.run(
        command.qemu, arguments: command.arguments(for: config, serial: sink),
        outputPath: qemuOutput, inheritStdout: live, bound: config.timeout)
      shellFailures = []
    }
    return BootRecord(
      termination: termination, log: SerialLog(Booter.read(log)),
      qemuOutput: Booter.read(qemuOutput), elapsed: clock.now - start,
      shellFailures: shellFailures)
  }

  /// The contents of a file as text (invalid UTF-8 repaired), or "" if it cannot be read.
  static func read(_ path: String) -> String {
    guard let data = FileManager.default.contents(atPath: path) else { return "" }
    return String(decoding: data, as: UTF8.self)
  }
}
