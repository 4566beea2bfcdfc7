import Foundation

// The harness commands, end to end (`trace` in TraceCommand.swift, `soak` in SoakRun.swift,
// `plots` in PlotData.swift, `gdb` in GDBCheck.swift). Exit statuses:
// 0 success, 1 failure, 2 usage or setup error (no kernel image, empty selection).

/// Runs a parsed command line.
public enum Commands {
  /// Runs `invocation` and returns the process exit status.
  public static func execute(_ invocation: Invocation) -> Int32 {
    switch invocation {
    case .help:
      Console.standardOutput(Invocation.usage + "\n")
      return 0
    case .check(let options):
      return hasKernel(options.common) ? check(options, sink: Console.standardOutput) : 2
    case .bench(let options):
      return hasKernel(options.common) ? bench(options, sink: Console.standardOutput) : 2
    case .run(let options):
      return hasKernel(options.common) ? run(options) : 2
    case .trace(let options):
      guard options.log != nil || hasKernel(options.common) else { return 2 }
      return trace(options, sink: Console.standardOutput)
    case .soak(let options):
      return hasKernel(options.common) ? SoakRun.run(options, sink: Console.standardOutput) : 2
    case .plots(let options):
      return plots(options, sink: Console.standardOutput)
    case .gdb(let options):
      return hasKernel(options.common) ? gdb(options, sink: Console.standardOutput) : 2
    }
  }

  private static func hasKernel(_ common: CommonOptions) -> Bool {
    let kernel = common.command.kernel
    guard FileManager.default.fileExists(atPath: kernel) else {
      Console.standardError("lockstep-harness: no kernel image at \(kernel)\n")
      return false
    }
    return true
  }

  /// `check`: boots the (filtered) matrix, reports each configuration, ends with the totals.
  /// - Returns: 0 iff every configuration passed; 2 if the filter selects none.
  public static func check(_ options: CheckOptions, sink: @escaping ReportSink) -> Int32 {
    let configs = CheckRun.configurations(matching: options.filter)
    guard !configs.isEmpty else {
      Console.standardError(
        "lockstep-harness: no configuration matches '\(options.filter ?? "")'\n")
      return 2
    }
    let kvmUsable = KVM.isUsable
    let skipped = configs.filter { $0.requiresKVM && !kvmUsable }
    for config in skipped {
      sink("SKIP  \(config.name)  (needs KVM; /dev/kvm is not usable here)\n")
    }
    let runnable = configs.filter { !$0.requiresKVM || kvmUsable }
    let booter = Booter(command: options.common.command, logDirectory: options.common.logs)
    let totals = CheckRun.run(runnable, jobs: options.jobs, sink: sink) { booter.boot($0) }
    sink(
      ResultFormat.summary(passed: totals.passed, failed: totals.failed, skipped: skipped.count))
    return totals.failed == 0 ? 0 : 1
  }

  /// `bench`: boots, prints the table and notes, writes the JSON. Never fails on a bad boot.
  /// - Returns: 0.
  public static func bench(_ options: BenchOptions, sink: @escaping ReportSink) -> Int32 {
    let common = options.common
    let booter = Booter(command: common.command, logDirectory: common.logs)
    let (pool, failed) = BenchRun.run(vcpus: options.vcpus, boots: options.boots, sink: sink) {
      booter.boot($0)
    }
    sink(BenchTable.render(pool.figures, notes: pool.notes))
    if failed > 0 {
      let total = options.vcpus.count * options.boots
      sink("\(failed) of \(total) boots failed; their samples are left out\n")
    }
    let version = BenchRun.qemuVersion(
      common.command.qemu, scratchPath: "\(common.logs)/qemu-version.txt")
    let date = ISO8601DateFormatter().string(from: Date())
    let report = BenchReport(qemu: version, date: date, results: pool.figures)
    do {
      try BenchRun.writeJSON(report, to: options.json)
      sink("figures written to \(options.json)\n")
    } catch {
      Console.standardError("lockstep-harness: cannot write \(options.json): \(error)\n")
    }
    return 0
  }

  /// `run`: boots one configuration with the console live on stdout, then prints the verdict.
  /// - Returns: 0 iff the kernel reported success.
  public static func run(_ options: RunOptions) -> Int32 {
    let config = options.config
    let booter = Booter(command: options.common.command, logDirectory: options.common.logs)
    let record = booter.boot(config, live: true)
    if !record.qemuOutput.isEmpty { Console.standardError(record.qemuOutput) }
    let verdict = Judge.judge(record, against: config.expectations)
    Console.standardOutput(
      ResultFormat.headline(name: config.name, verdict: verdict, record: record))
    return verdict.passed ? 0 : 1
  }
}
