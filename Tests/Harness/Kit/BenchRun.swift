import Foundation

// `bench`: boots each vCPU count several times with `bench` on the kernel command line and
// pools the samples. Boots run one at a time: a second QEMU would disturb the timings.

/// Collects benchmark samples.
public enum BenchRun {
  /// The configuration of one benchmark boot: a plain PC, kernel command line `bench`.
  /// - Parameters:
  ///   - vcpus: The vCPU count.
  ///   - boot: The boot's number among those of its vCPU count, from 1.
  /// - Returns: The configuration, named `bench-<vcpus>-<boot>`, bounded by `timeout(vcpus:)`.
  public static func config(vcpus: Int, boot: Int) -> BootConfig {
    BootConfig(
      name: "bench-\(vcpus)-\(boot)", smp: "\(vcpus)", append: "bench",
      timeout: timeout(vcpus: vcpus))
  }

  /// The bound of one benchmark boot: 60 s plus 4 s a vCPU (316 s at 64). Beyond the
  /// cross-calls' busy figures (seconds at 64 vCPUs), stop_machine and CPU hotplug take
  /// every vCPU through several steps per sample, and a boot that runs out of time loses
  /// every sample it took.
  public static func timeout(vcpus: Int) -> Duration {
    .seconds(60 + 4 * vcpus)
  }

  /// Boots every vCPU count `boots` times, reports each boot, and pools the samples of the
  /// boots that passed (a failed boot's figures may be partial or wrong).
  /// - Parameters:
  ///   - vcpus: The vCPU counts, in order.
  ///   - boots: Boots per count.
  ///   - sink: Receives one report per boot.
  ///   - boot: Boots one configuration (`Booter.boot` outside tests).
  /// - Returns: The pooled samples and how many boots failed.
  public static func run(
    vcpus: [Int], boots: Int, sink: ReportSink, boot: (BootConfig) -> BootRecord
  ) -> (pool: BenchPool, failed: Int) {
    var pool = BenchPool()
    var failed = 0
    for count in vcpus {
      for number in 1...boots {
        let config = config(vcpus: count, boot: number)
        let record = boot(config)
        let verdict = Judge.judge(record, against: config.expectations)
        sink(ResultFormat.report(name: config.name, verdict: verdict, record: record))
        if verdict.passed {
          pool.add(record.log, vcpus: count)
        } else {
          failed += 1
        }
      }
    }
    return (pool, failed)
  }

  /// The first line of `qemu --version`, or a note saying why there is none.
  /// - Parameters:
  ///   - qemu: The QEMU executable.
  ///   - scratchPath: A file the output may be written to.
  public static func qemuVersion(_ qemu: String, scratchPath: String) -> String {
    let termination = BoundedProcess.run(
      qemu, arguments: ["--version"], outputPath: scratchPath, bound: .seconds(10))
    let firstLine = Booter.read(scratchPath).split(whereSeparator: \.isNewline).first
    try? FileManager.default.removeItem(atPath: scratchPath)
    guard termination == .exited(0), let firstLine else {
      return "unknown (\(qemu) --version failed)"
    }
    return String(firstLine)
  }

  /// Writes the figures as JSON to `path`, creating its directory.
  /// - Throws: If the file cannot be written.
  public static func writeJSON(_ report: BenchReport, to path: String) throws {
    let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    try report.json().write(to: URL(fileURLWithPath: path))
  }
}
