import Foundation
import Synchronization

// `soak`: boots `ktest=soak` on each vCPU count for a set time, streams each machine's
// progress, judges each boot, and ends with the operations of all machines and
// `N passed, N failed`.

/// `soak`: the options.
public struct SoakOptions: Equatable, Sendable {
  /// Shared options.
  public var common: CommonOptions
  /// The wall time of the whole soak, boots aside, in seconds.
  public var seconds: Int
  /// One machine per vCPU count.
  public var vcpus: [Int]
  /// How many machines soak at once; the time is shared among the batches.
  public var jobs: Int
  /// `torture_seed=` for every machine; nil lets each kernel pick.
  public var seed: Int?

  /// Creates `soak` options: by default 10 minutes on 2, 4 and 8 vCPUs, all at once
  /// (`jobs` nil). At once gave 41% more operations than one after the other on the
  /// 2-core host (52 000 against 37 000 a second, 90 s each way), and every machine
  /// soaks the whole time rather than a third of it.
  public init(
    common: CommonOptions, seconds: Int = 600, vcpus: [Int] = [2, 4, 8], jobs: Int? = nil,
    seed: Int? = nil
  ) {
    self.common = common
    self.seconds = seconds
    self.vcpus = vcpus
    self.jobs = jobs ?? vcpus.count
    self.seed = seed
  }

  /// Each machine's soak: the wall time over the batches `jobs` makes of the machines
  /// (all of it when they all run at once; a third each, one at a time, for three).
  public var secondsPerMachine: Int {
    let jobs = max(1, min(self.jobs, vcpus.count))
    let batches = (vcpus.count + jobs - 1) / jobs
    return max(1, seconds / max(1, batches))
  }

  /// The configurations booted, in report order.
  public var configurations: [BootConfig] {
    vcpus.map { Matrix.soakConfig(vcpus: $0, seconds: secondsPerMachine, seed: seed) }
  }
}

/// The `soak` command.
public enum SoakRun {
  /// The goal the soak is measured against: operations over all machines in one run.
  public static let goalOperations = 10_000_000

  /// Boots, streams, judges and totals. Blocks until every machine is done.
  /// - Returns: 0 iff every machine passed.
  public static func run(_ options: SoakOptions, sink: @escaping ReportSink) -> Int32 {
    let common = options.common
    let configs = options.configurations
    try? FileManager.default.createDirectory(atPath: common.logs, withIntermediateDirectories: true)
    let version = BenchRun.qemuVersion(
      common.command.qemu, scratchPath: "\(common.logs)/qemu-version.txt")
    sink(
      "soak: \(options.secondsPerMachine) s on each of \(configs.map(\.name).joined(separator: ", ")), "
        + "\(min(options.jobs, configs.count)) at a time; \(common.command.accel.rawValue), \(version); "
        + "logs in \(common.logs)\n")
    let booter = Booter(command: common.command, logDirectory: common.logs)
    let finals = FinalCounters()
    let totals = CheckRun.run(configs, jobs: options.jobs, sink: sink) { config in
      let record = SoakStream.boot(config, booter: booter, sink: sink)
      finals.store(config.name, record.log.soakProgress.last(where: \.isFinal))
      return record
    }
    sink(totalsText(configs.map { ($0.name, finals.value($0.name)) }))
    sink(ResultFormat.summary(passed: totals.passed, failed: totals.failed))
    return totals.failed == 0 ? 0 : 1
  }

  /// One line per machine with its final counters, then the sum and whether it reached
  /// `goalOperations`.
  public static func totalsText(_ machines: [(name: String, final: SoakProgress?)]) -> String {
    var text = ""
    var operations = 0
    var errors = 0
    for (name, final) in machines {
      guard let final else {
        text += "\(name): no final counters\n"
        continue
      }
      text += "\(name): \(final.summary)\n"
      operations += final.operations
      errors += final.errors
    }
    let goal = operations >= goalOperations ? "reached" : "not reached"
    text += "total: \(operations) operations, \(errors) errors (goal 10^7: \(goal))\n"
    return text
  }
}

/// Each machine's `soak end` counters, filled in by the boot threads.
private final class FinalCounters: Sendable {
  private let values = Mutex<[String: SoakProgress]>([:])

  func store(_ name: String, _ final: SoakProgress?) {
    values.withLock { $0[name] = final }
  }

  func value(_ name: String) -> SoakProgress? {
    values.withLock { $0[name] }
  }
}
