import Foundation

// `gdb`: the debugger against a kernel as it crashes. QEMU starts paused with a gdb stub on
// a free port and a deliberate fault (`ktest=fault_ud`); gdb in batch mode loads the DWARF
// of the 64-bit ELF, breaks on the panic report by its Swift name, continues, and takes a
// backtrace and the CPU table (`lockstep-cpus`, scripts/gdb/lockstep.py). The backtrace must name
// Swift source files and lines, from Panic.swift down to the test that faulted. Every wait
// is bounded: gdb's connection, gdb itself, and QEMU, which is killed at the end.

/// `gdb`: the debugger check's options.
public struct GDBOptions: Equatable, Sendable {
  /// Shared options (`--kernel` is the image QEMU boots).
  public var common: CommonOptions
  /// The 64-bit ELF with DWARF that gdb reads (`--elf`).
  public var elf: String
  /// The gdb executable (`--gdb`).
  public var gdb: String
  /// The Lockstep commands, unwinder and Swift-name frame filter (`--commands`).
  public var commandFile: String

  /// Creates `gdb` options.
  public init(
    common: CommonOptions, elf: String = "build/kernel.elf", gdb: String = "gdb",
    commandFile: String = "scripts/gdb/lockstep.py"
  ) {
    self.common = common
    self.elf = elf
    self.gdb = gdb
    self.commandFile = commandFile
  }
}

/// The debugger check: its boot, gdb's commands, and the judgement of gdb's output.
public enum GDBCheck {
  /// The panic report's entry, by its Swift name (`lockstep-break` finds its symbol).
  public static let breakpoint = "Panic.exception"
  /// The boot: a #UD from the `fault_ud` suite on 2 vCPUs, paused at reset until gdb says go.
  public static func config(port: Int) -> BootConfig {
    BootConfig(
      name: "gdb-fault-ud", smp: "2", append: "ktest=fault_ud", timeout: .seconds(120),
      qemuArguments: ["-S", "-gdb", "tcp:127.0.0.1:\(port)"])
  }
  /// How long gdb may keep trying to connect to the stub.
  public static let connectTimeout = 20
  /// How long gdb may run in all (connect, boot to the fault, backtrace).
  public static let gdbBound: Duration = .seconds(90)

  /// gdb's command line after the executable: batch mode, no ~/.gdbinit, one `-ex` per
  /// command (batch mode goes on after a failed `-ex`, so every check gets its output).
  public static func gdbArguments(elf: String, commandFile: String, port: Int) -> [String] {
    let commands = [
      "set pagination off",
      "set confirm off",
      "set width 0",
      "set architecture i386:x86-64",
      "file \(elf)",
      "source \(commandFile)",
      "set tcp connect-timeout \(connectTimeout)",
      "target remote 127.0.0.1:\(port)",
      "lockstep-break \(breakpoint)",
      "continue",
      "echo ==== backtrace\\n",
      "bt",
      "echo ==== cpus\\n",
      "lockstep-cpus",
      "echo ==== end\\n",
    ]
    return ["-batch", "-nx"] + commands.flatMap { ["-ex", $0] }
  }

  /// One named check of gdb's output.
  public struct Check: Equatable, Sendable {
    /// What is checked.
    public var name: String
    /// Nil when it passed; otherwise why not.
    public var failure: String?
  }

  /// Judges gdb's output (stdout and stderr together).
  /// - Returns: The checks in order, each passed or failed with a reason.
  public static func judge(_ output: String) -> [Check] {
    let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let backtrace = section(lines, from: "==== backtrace", to: "==== cpus")
    let cpus = section(lines, from: "==== cpus", to: "==== end")
    var checks: [Check] = []
    func check(_ name: String, _ failure: String?) {
      checks.append(Check(name: name, failure: failure))
    }
    // Attached, gdb reports where the paused CPU is: the reset vector, `0x…fff0 in ?? ()`.
    let attached = lines.contains { $0.hasPrefix("0x") && $0.contains(" in ") }
    check(
      "gdb attaches to QEMU's stub",
      attached ? nil : "no stop reported after target remote: " + (firstError(lines) ?? "gdb did not connect"))
    let set = lines.first { $0.hasPrefix("Breakpoint 1 at ") }
    check(
      "break \(breakpoint) resolves to Panic.swift",
      set.map { $0.contains("Panic.swift") ? nil : "breakpoint set without a source file: \($0)" }
        ?? "no breakpoint set: " + (firstError(lines) ?? "no 'Breakpoint 1 at' line"))
    let hit = lines.contains { $0.hasPrefix("Thread ") && $0.contains("hit Breakpoint 1") }
      || lines.contains { $0.hasPrefix("Breakpoint 1, ") }
    check("the fault reaches the breakpoint", hit ? nil : "no 'Breakpoint 1,' stop after continue")
    let frames = backtrace.filter { $0.hasPrefix("#") }
    // Frame #0 may be a function inlined into the report (readCR2, its first line).
    let panicFrame = frames.prefix(2).first { $0.contains("static Panic.exception(_:)") }
    check(
      "a frame is static Panic.exception(_:) at Panic.swift:LINE",
      panicFrame.map { frameHasSource($0, file: "Panic.swift") ? nil : "no file:line in '\($0)'" }
        ?? "not in the first two frames: \(frames.prefix(2).joined(separator: " | "))")
    check(
      "the backtrace crosses the interrupt frame into cpu_invalid_opcode at cpu.asm:LINE",
      frames.contains { $0.contains("cpu_invalid_opcode") && frameHasSource($0, file: "cpu.asm") }
        ? nil : "no cpu_invalid_opcode frame at Boot/cpu.asm:LINE among \(frames.count) frames")
    // The fault_ud case's closure is a merged function (Swift merged the identical test
    // closures), which has a symbol but no line: its name says which suite it is.
    check(
      "the backtrace reaches the faulting test (FaultSuites.invalidOpcode)",
      frames.contains { $0.contains("FaultSuites") && $0.contains("invalidOpcode") } ? nil
        : "no FaultSuites.invalidOpcode frame among \(frames.count) frames")
    check(
      "the callers below have Swift names, files and lines (KTAP.swift:LINE)",
      frames.contains { $0.contains("static KTAP.run(") && frameHasSource($0, file: "KTAP.swift") }
        ? nil : "no static KTAP.run frame at KTAP.swift:LINE")
    let cpuRows = cpus.filter { $0.hasPrefix("CPU ") }
    check(
      "lockstep-cpus lists CPU 0 and 1 online",
      cpuRows.count == 2 && cpuRows.allSatisfy({ $0.contains("online") }) ? nil
        : "CPU table: \(cpus.isEmpty ? "missing" : cpus.joined(separator: " | "))")
    return checks
  }

  /// Whether a backtrace line ends in ` at …/FILE:LINE`.
  static func frameHasSource(_ frame: String, file: String) -> Bool {
    guard let range = frame.range(of: "/\(file):", options: .backwards)
      ?? frame.range(of: " at \(file):", options: .backwards)
    else { return false }
    let digits = frame[range.upperBound...].prefix { $0.isNumber }
    return !digits.isEmpty
  }

  /// The lines after the one starting with `start`, up to the one starting with `end`.
  static func section(_ lines: [String], from start: String, to end: String) -> [String] {
    guard let first = lines.firstIndex(where: { $0.hasPrefix(start) }) else { return [] }
    let rest = lines[(first + 1)...]
    return Array(rest.prefix { !$0.hasPrefix(end) })
  }

  /// The first line that looks like a gdb or connection error, for a failure's reason.
  static func firstError(_ lines: [String]) -> String? {
    lines.first {
      $0.contains("Connection refused") || $0.contains("Connection timed out")
        || $0.contains("No symbol") || $0.contains("not defined") || $0.contains("Remote connection closed")
        || $0.contains("No such file")
    }
  }

  /// A free TCP port on 127.0.0.1, as the kernel gives one to a socket bound to port 0
  /// (closed again at once: QEMU binds it next; another process taking it meanwhile makes
  /// the check fail with QEMU's message, never hang).
  static func freePort() -> Int? {
    let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socketFD >= 0 else { return nil }
    defer { close(socketFD) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
      pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
        bind(socketFD, generic, length) == 0 && getsockname(socketFD, generic, &length) == 0
      }
    }
    guard bound else { return nil }
    return Int(UInt16(bigEndian: address.sin_port))
  }
}

extension Commands {
  /// `gdb`: boots the fault paused, runs gdb against it, judges gdb's output, kills QEMU.
  /// - Returns: 0 iff every check passed; 2 if gdb, the ELF or a port is missing.
  public static func gdb(_ options: GDBOptions, sink: @escaping ReportSink) -> Int32 {
    guard let gdbPath = BoundedProcess.resolve(options.gdb) else {
      Console.standardError("lockstep-harness: \(options.gdb) not found in PATH\n")
      return 2
    }
    for path in [options.elf, options.commandFile] where !FileManager.default.fileExists(atPath: path) {
      Console.standardError("lockstep-harness: no \(path)\n")
      return 2
    }
    guard let port = GDBCheck.freePort() else {
      Console.standardError("lockstep-harness: no free TCP port for the gdb stub\n")
      return 2
    }
    let logs = options.common.logs
    try? FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
    let config = GDBCheck.config(port: port)
    let serialPath = "\(logs)/\(config.name).log"
    let qemuOutputPath = "\(logs)/\(config.name).qemu"
    let gdbOutputPath = "\(logs)/\(config.name).gdb"
    try? FileManager.default.removeItem(atPath: serialPath)
    sink("gdb check: QEMU paused with a gdb stub on 127.0.0.1:\(port), ktest=fault_ud\n")
    let qemu: BackgroundProcess
    do {
      qemu = try BackgroundProcess(
        options.common.command.qemu,
        arguments: options.common.command.arguments(for: config, serial: .file(serialPath)),
        outputPath: qemuOutputPath)
    } catch {
      sink("FAIL  QEMU starts  (\(error.message))\n")
      sink(ResultFormat.summary(passed: 0, failed: 1))
      return 1
    }
    let termination = BoundedProcess.run(
      gdbPath,
      arguments: GDBCheck.gdbArguments(elf: options.elf, commandFile: options.commandFile, port: port),
      outputPath: gdbOutputPath, bound: GDBCheck.gdbBound)
    let qemuEnd = qemu.stop()
    let output = Booter.read(gdbOutputPath)
    var checks = GDBCheck.judge(output)
    if case .timedOut(let bound) = termination {
      checks.insert(
        .init(name: "gdb finishes", failure: "no exit within \(bound.secondsText), killed"), at: 0)
    } else if case .failedToStart(let reason) = termination {
      checks.insert(.init(name: "gdb starts", failure: reason), at: 0)
    }
    var passed = 0
    for check in checks {
      if let failure = check.failure {
        sink("FAIL  \(check.name)  (\(failure))\n")
      } else {
        passed += 1
        sink("PASS  \(check.name)\n")
      }
    }
    let failed = checks.count - passed
    if failed > 0 {
      sink("    gdb output: \(gdbOutputPath); QEMU (\(qemuEnd)): \(qemuOutputPath); serial: \(serialPath)\n")
      let qemuText = Booter.read(qemuOutputPath)
      for line in qemuText.split(separator: "\n").suffix(5) { sink("    qemu: \(line)\n") }
    }
    sink(ResultFormat.summary(passed: passed, failed: failed))
    return failed == 0 ? 0 : 1
  }
}

/// A child process left running while the harness does something else, stopped with
/// `stop()` (SIGTERM, then SIGKILL after `BoundedProcess.killGrace`). Output to a file.
final class BackgroundProcess {
  private let process = Process()
  private let exited = DispatchSemaphore(value: 0)
  private let output: FileHandle

  /// Starts `executable` (a path or a name in `PATH`).
  /// - Throws: `UsageError` saying why it could not start.
  init(_ executable: String, arguments: [String], outputPath: String) throws(UsageError) {
    guard let path = BoundedProcess.resolve(executable) else {
      throw UsageError(message: "\(executable) not found in PATH")
    }
    guard FileManager.default.createFile(atPath: outputPath, contents: nil),
      let output = FileHandle(forWritingAtPath: outputPath)
    else { throw UsageError(message: "cannot create \(outputPath)") }
    self.output = output
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = output
    process.standardError = output
    let exited = self.exited
    process.terminationHandler = { _ in exited.signal() }
    do {
      try process.run()
    } catch {
      try? output.close()
      throw UsageError(message: "\(path): \(error.localizedDescription)")
    }
  }

  /// Ends the process if it still runs and waits for it (bounded by the kill grace, then
  /// SIGKILL, which cannot be refused).
  /// - Returns: How it ended: "exited N", "killed" or "signal N".
  func stop() -> String {
    defer { try? output.close() }
    if exited.wait(timeout: .now()) == .success {
      return describe()
    }
    process.terminate()
    if exited.wait(timeout: .now() + BoundedProcess.killGrace.dispatchInterval) == .timedOut {
      kill(process.processIdentifier, SIGKILL)
      exited.wait()
    }
    return "killed"
  }

  private func describe() -> String {
    process.terminationReason == .exit
      ? "exited \(process.terminationStatus)" : "signal \(process.terminationStatus)"
  }
}
