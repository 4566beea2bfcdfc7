import Foundation
import Synchronization

// `check`: boots configurations, up to `jobs` QEMUs at once, and reports each in matrix order
// as soon as it and every configuration before it have finished.

/// Boots a list of configurations and reports their verdicts.
public enum CheckRun {
  /// Boots and judges every configuration; blocks until all are done.
  /// - Parameters:
  ///   - configs: The configurations, in report order.
  ///   - jobs: How many boots may run at once (at least 1).
  ///   - sink: Receives each configuration's report, in order.
  ///   - boot: Boots one configuration (`Booter.boot` outside tests).
  /// - Returns: How many passed and failed.
  public static func run(
    _ configs: [BootConfig], jobs: Int, sink: @escaping ReportSink,
    boot: @escaping @Sendable (BootConfig) -> BootRecord
  ) -> (passed: Int, failed: Int) {
    let progress = CheckProgress(sink: sink)
    let group = DispatchGroup()
    // One thread per job rather than Dispatch's pool, whose width on Linux follows the core
    // count: a worker spends its life blocked on QEMU, so the pool could run fewer than `jobs`.
    for _ in 0..<min(max(jobs, 1), configs.count) {
      group.enter()
      let worker = Thread {
        defer { group.leave() }
        while let index = progress.claim(below: configs.count) {
          let config = configs[index]
          let record = boot(config)
          let verdict = Judge.judge(record, against: config.expectations)
          let report = ResultFormat.report(name: config.name, verdict: verdict, record: record)
          progress.finish(index, report: report, passed: verdict.passed)
        }
      }
      worker.start()
    }
    group.wait()
    return progress.totals
  }

  /// The configurations `check` boots: the standard matrix, narrowed by `--filter`.
  /// - Parameter filter: A substring of the names to keep; nil keeps all.
  /// - Returns: The configurations, in matrix order.
  public static func configurations(matching filter: String?) -> [BootConfig] {
    guard let filter else { return Matrix.standard }
    return Matrix.standard.filter { $0.name.contains(filter) }
  }
}

/// Shared state of the workers of one `CheckRun`: which configuration is next, and the reports
/// waiting for an earlier configuration to finish.
private final class CheckProgress: Sendable {
  private struct State {
    var claimed = 0
    var printed = 0
    var waiting: [Int: String] = [:]
    var passed = 0
    var failed = 0
  }

  private let state = Mutex(State())
  private let sink: ReportSink

  init(sink: @escaping ReportSink) {
    self.sink = sink
  }

  /// The next configuration to boot, or nil when all `count` are claimed.
  func claim(below count: Int) -> Int? {
    state.withLock { state in
      guard state.claimed < count else { return nil }
      defer { state.claimed += 1 }
      return state.claimed
    }
  }

  /// Records a finished configuration and emits every report that is now next in order.
  /// Emitting under the lock keeps the order and keeps reports whole.
  func finish(_ index: Int, report: String, passed: Bool) {
    state.withLock { state in
      if passed { state.passed += 1 } else { state.failed += 1 }
      state.waiting[index] = report
      while let next = state.waiting.removeValue(forKey: state.printed) {
        sink(next)
        state.printed += 1
      }
    }
  }

  /// The totals so far.
  var totals: (passed: Int, failed: Int) {
    state.withLock { ($0.passed, $0.failed) }
  }
}
