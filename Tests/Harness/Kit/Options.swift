// The harness's command line: `check`, `bench`, `run`, `trace`, `soak`, `plots` and `gdb`,
// each with `--flag value` options.

/// Options every command takes.
public struct CommonOptions: Equatable, Sendable {
  /// The QEMU, kernel image and accelerator to boot with.
  public var command: QEMUCommand
  /// Directory for serial logs.
  public var logs: String

  /// Creates the shared options.
  public init(command: QEMUCommand, logs: String = "build/logs") {
    self.command = command
    self.logs = logs
  }
}

/// `check`: boot the matrix.
public struct CheckOptions: Equatable, Sendable {
  /// Shared options.
  public var common: CommonOptions
  /// How many QEMUs may run at once.
  public var jobs: Int
  /// Only configurations whose name contains this.
  public var filter: String?

  /// Creates `check` options.
  public init(common: CommonOptions, jobs: Int = 2, filter: String? = nil) {
    self.common = common
    self.jobs = jobs
    self.filter = filter
  }
}

/// `bench`: boot each vCPU count several times with `bench` on the command line.
public struct BenchOptions: Equatable, Sendable {
  /// Shared options.
  public var common: CommonOptions
  /// The vCPU counts to measure.
  public var vcpus: [Int]
  /// Boots per vCPU count.
  public var boots: Int
  /// Where to write the JSON figures.
  public var json: String
}

/// `run`: boot one configuration with the console live on stdout.
public struct RunOptions: Equatable, Sendable {
  /// Shared options.
  public var common: CommonOptions
  /// The configuration to boot (it expects outcome `pass`).
  public var config: BootConfig
}

/// `trace`: boot `ktest=stop_trace` once and write its stop trace as a trace-event file.
public struct TraceOptions: Equatable, Sendable {
  /// Shared options.
  public var common: CommonOptions
  /// The vCPU count (`Matrix.traceConfig(vcpus:)`).
  public var vcpus: Int
  /// Where to write the trace-event JSON.
  public var out: String
  /// A serial log to convert instead of booting (`--log`, e.g. from `make run`).
  public var log: String?

  /// Creates `trace` options.
  public init(
    common: CommonOptions, vcpus: Int = 8, out: String = "build/stop-trace.json",
    log: String? = nil
  ) {
    self.common = common
    self.vcpus = vcpus
    self.out = out
    self.log = log
  }
}

/// A parsed harness command line.
public enum Invocation: Equatable, Sendable {
  /// `check`.
  case check(CheckOptions)
  /// `bench`.
  case bench(BenchOptions)
  /// `run`.
  case run(RunOptions)
  /// `trace`.
  case trace(TraceOptions)
  /// `soak`.
  case soak(SoakOptions)
  /// `plots`.
  case plots(PlotOptions)
  /// `gdb` (GDBCheck.swift).
  case gdb(GDBOptions)
  /// `help`, `-h` or `--help`.
  case help
}

/// A command line the harness cannot use; `message` says why.
public struct UsageError: Error, Equatable {
  /// What is wrong.
  public var message: String

  /// Creates an error saying `message`.
  public init(message: String) {
    self.message = message
  }
}

extension Invocation {
  /// The usage text.
  public static let usage = """
    usage: lockstep-harness check --kernel IMAGE [--qemu QEMU] [--accel tcg|kvm] [--jobs 2]
                                  [--filter SUBSTRING] [--logs build/logs]
           lockstep-harness bench --kernel IMAGE [--qemu QEMU] [--accel tcg|kvm]
                                  [--vcpus 1,2,4,8,16,32,64] [--boots 5] [--json build/bench.json]
                                  [--logs build/logs]
           lockstep-harness run   --kernel IMAGE [--qemu QEMU] [--accel tcg|kvm] [--smp 1]
                                  [--machine pc|q35] [--memory 128M] [--append "..."]
                                  [--timeout SECONDS] [--logs build/logs]
           lockstep-harness trace --kernel IMAGE [--qemu QEMU] [--accel tcg|kvm] [--smp 8]
                                  [--out build/stop-trace.json] [--logs build/logs]
           lockstep-harness trace --log SERIAL-LOG [--out build/stop-trace.json]
           lockstep-harness soak  --kernel IMAGE [--qemu QEMU] [--accel tcg|kvm]
                                  [--minutes 10 | --seconds S] [--vcpus 2,4,8] [--jobs 3]
                                  [--seed S] [--logs build/logs]
           lockstep-harness plots [--json build/bench.json] [--out docs/plots]
           lockstep-harness gdb   --kernel IMAGE [--elf build/kernel.elf] [--gdb gdb]
                                  [--commands scripts/gdb/lockstep.py] [--qemu QEMU] [--accel tcg|kvm]
                                  [--logs build/logs]
    """

  private static let commonFlags = ["kernel", "qemu", "accel", "logs"]

  /// Parses the arguments after the program name.
  /// - Throws: `UsageError` for an unknown command or flag, a missing or malformed value.
  public static func parse(_ arguments: [String]) throws(UsageError) -> Invocation {
    guard let command = arguments.first else { throw UsageError(message: "no command given") }
    let rest = Array(arguments.dropFirst())
    switch command {
    case "check":
      let flags = try FlagValues(rest, allowed: commonFlags + ["jobs", "filter"])
      let jobs = try flags.integer("jobs", minimum: 1) ?? 2
      return .check(
        CheckOptions(common: try common(flags), jobs: jobs, filter: flags.values["filter"]))
    case "bench":
      return .bench(try benchOptions(rest))
    case "run":
      return .run(try runOptions(rest))
    case "trace":
      return .trace(try traceOptions(rest))
    case "soak":
      return .soak(try soakOptions(rest))
    case "plots":
      // Boots nothing: no kernel, QEMU or logs.
      let flags = try FlagValues(rest, allowed: ["json", "out"])
      return .plots(
        PlotOptions(
          json: flags.values["json"] ?? "build/bench.json", out: flags.values["out"] ?? "docs/plots"))
    case "gdb":
      let flags = try FlagValues(rest, allowed: commonFlags + ["elf", "gdb", "commands"])
      return .gdb(
        GDBOptions(
          common: try common(flags), elf: flags.values["elf"] ?? "build/kernel.elf",
          gdb: flags.values["gdb"] ?? "gdb", commandFile: flags.values["commands"] ?? "scripts/gdb/lockstep.py"))
    case "help", "-h", "--help":
      return .help
    default:
      throw UsageError(message: "unknown command '\(command)'")
    }
  }

  private static func benchOptions(_ arguments: [String]) throws(UsageError) -> BenchOptions {
    let flags = try FlagValues(arguments, allowed: commonFlags + ["vcpus", "boots", "json"])
    return BenchOptions(
      common: try common(flags), vcpus: try vcpuList(flags, default: "1,2,4,8,16,32,64"),
      boots: try flags.integer("boots", minimum: 1) ?? 5,
      json: flags.values["json"] ?? "build/bench.json")
  }

  private static func soakOptions(_ arguments: [String]) throws(UsageError) -> SoakOptions {
    let allowed = commonFlags + ["minutes", "seconds", "vcpus", "jobs", "seed"]
    let flags = try FlagValues(arguments, allowed: allowed)
    let minutes = try flags.integer("minutes", minimum: 1)
    let seconds = try flags.integer("seconds", minimum: 1)
    guard minutes == nil || seconds == nil else {
      throw UsageError(message: "give --minutes or --seconds, not both")
    }
    // The kernel takes soak_seconds=1...86400 (a day) per machine.
    let total = seconds ?? (minutes ?? 10) * 60
    guard total <= 86_400 else { throw UsageError(message: "a soak lasts at most a day (86400 s)") }
    return SoakOptions(
      common: try common(flags), seconds: total, vcpus: try vcpuList(flags, default: "2,4,8"),
      jobs: try flags.integer("jobs", minimum: 1), seed: try flags.integer("seed", minimum: 0))
  }

  private static func vcpuList(_ flags: FlagValues, default text: String) throws(UsageError) -> [Int] {
    let vcpuText = flags.values["vcpus"] ?? text
    var cursor = TextCursor(vcpuText)
    guard let vcpus = cursor.integerList(), cursor.isAtEnd, !vcpus.isEmpty, !vcpus.contains(0) else {
      throw UsageError(message: "--vcpus needs a list like 1,2,4, not '\(vcpuText)'")
    }
    return vcpus
  }

  private static func runOptions(_ arguments: [String]) throws(UsageError) -> RunOptions {
    let allowed = commonFlags + ["smp", "machine", "memory", "append", "timeout"]
    let flags = try FlagValues(arguments, allowed: allowed)
    let machineName = flags.values["machine"] ?? "pc"
    guard let machine = Machine(rawValue: machineName) else {
      throw UsageError(message: "unknown machine '\(machineName)'")
    }
    let timeout = try flags.integer("timeout", minimum: 1).map { Duration.seconds($0) }
    let config = BootConfig(
      name: "run", smp: flags.values["smp"] ?? "1", machine: machine,
      memory: flags.values["memory"] ?? "128M", append: flags.values["append"] ?? "",
      timeout: timeout)
    return RunOptions(common: try common(flags), config: config)
  }

  private static func traceOptions(_ arguments: [String]) throws(UsageError) -> TraceOptions {
    let flags = try FlagValues(arguments, allowed: commonFlags + ["smp", "out", "log"])
    let log = flags.values["log"]
    // Converting a log boots nothing, so it needs no kernel image.
    return TraceOptions(
      common: try common(flags, kernelRequired: log == nil),
      vcpus: try flags.integer("smp", minimum: 1) ?? 8,
      out: flags.values["out"] ?? "build/stop-trace.json", log: log)
  }

  private static func common(
    _ flags: FlagValues, kernelRequired: Bool = true
  ) throws(UsageError) -> CommonOptions {
    guard let kernel = flags.values["kernel"] ?? (kernelRequired ? nil : "") else {
      throw UsageError(message: "--kernel IMAGE is required")
    }
    let accelName = flags.values["accel"] ?? "tcg"
    guard let accel = Accel(rawValue: accelName) else {
      throw UsageError(message: "unknown accelerator '\(accelName)'")
    }
    let command = QEMUCommand(
      qemu: flags.values["qemu"] ?? "qemu-system-x86_64", kernel: kernel, accel: accel)
    return CommonOptions(command: command, logs: flags.values["logs"] ?? "build/logs")
  }
}

/// `--flag value` and `--flag=value` pairs, checked against the flags a command accepts.
struct FlagValues {
  /// Value by flag name (without the dashes).
  private(set) var values: [String: String] = [:]

  /// Collects `arguments`, which must all be `--flag value` or `--flag=value` pairs.
  /// - Throws: `UsageError` for a flag not in `allowed`, a repeated flag, or a missing value.
  init(_ arguments: [String], allowed: [String]) throws(UsageError) {
    var remaining = arguments[...]
    while let argument = remaining.popFirst() {
      guard argument.hasPrefix("--") else {
        throw UsageError(message: "unexpected argument '\(argument)'")
      }
      let body = argument.dropFirst(2)
      let name = String(body.prefix { $0 != "=" })
      guard allowed.contains(name) else { throw UsageError(message: "unknown flag --\(name)") }
      guard values[name] == nil else { throw UsageError(message: "--\(name) given twice") }
      if body.contains("=") {
        values[name] = String(body.drop { $0 != "=" }.dropFirst())
      } else if let value = remaining.popFirst() {
        values[name] = value
      } else {
        throw UsageError(message: "--\(name) needs a value")
      }
    }
  }

  /// The integer value of `--name`, nil if the flag is absent.
  /// - Throws: `UsageError` if the value is not an integer of at least `minimum`.
  func integer(_ name: String, minimum: Int) throws(UsageError) -> Int? {
    guard let text = values[name] else { return nil }
    guard let value = Int(text), value >= minimum else {
      throw UsageError(message: "--\(name) needs an integer >= \(minimum), not '\(text)'")
    }
    return value
  }
}
