import Foundation

// `trace`: boots `ktest=stop_trace` once (the matrix's `trace-<n>` configuration), writes
// its stop trace as a trace-event file, and validates that file as read back from disk.

extension Commands {
  /// `trace`: boots, reports the boot's verdict, writes and validates the trace; with
  /// `--log`, converts that log instead of booting.
  /// - Returns: 0 iff the boot passed (or the log was read) and the written file is valid.
  public static func trace(_ options: TraceOptions, sink: @escaping ReportSink) -> Int32 {
    if let path = options.log {
      guard let data = FileManager.default.contents(atPath: path) else {
        sink("stop trace: cannot read \(path)\n")
        return 1
      }
      let log = SerialLog(String(decoding: data, as: UTF8.self))
      return writeTrace(of: log, to: options.out, sink: sink) ? 0 : 1
    }
    var config = Matrix.traceConfig(vcpus: options.vcpus)
    // The file is validated below as read back; the judge need not do it in memory too.
    config.expectations.stopTrace = false
    let booter = Booter(command: options.common.command, logDirectory: options.common.logs)
    let record = booter.boot(config)
    let verdict = Judge.judge(record, against: config.expectations)
    sink(ResultFormat.report(name: config.name, verdict: verdict, record: record))
    let valid = writeTrace(of: record.log, to: options.out, sink: sink)
    return verdict.passed && valid ? 0 : 1
  }

  /// Converts the log's stop trace, writes it to `path`, reads the file back and
  /// validates it. A trace that converts but is invalid is still written, to be looked
  /// at; a log without one leaves no file (an earlier run's is removed).
  /// - Parameters:
  ///   - log: A `ktest=stop_trace` boot's serial log.
  ///   - path: Where to write the file; its directory is created.
  ///   - sink: Receives one line per failure, or the line saying where the file went.
  /// - Returns: Whether a valid file is now at `path`.
  public static func writeTrace(of log: SerialLog, to path: String, sink: ReportSink) -> Bool {
    let url = URL(fileURLWithPath: path)
    try? FileManager.default.removeItem(at: url)
    var failures: [String]
    do {
      let converted = try StopTraceJSON.convert(log)
      try FileManager.default.createDirectory(
        at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try converted.data.write(to: url)
      failures = StopTraceValidator.failures(
        in: try Data(contentsOf: url), cpuCount: converted.block.cpuCount,
        online: converted.online)
      if failures.isEmpty {
        // The same trace as a picture beside it (the `.svg` of the same name).
        let picture = url.deletingPathExtension().appendingPathExtension("svg")
        try Data(StopTraceSVG.svg(converted.block).utf8).write(to: picture)
        sink(
          "stop trace of \(converted.block.cpus.count) CPUs (stop \(converted.block.generation)) "
            + "written to \(path): valid; open it in https://ui.perfetto.dev or chrome://tracing; "
            + "as a picture: \(picture.path)\n")
        return true
      }
      failures.append("written to \(path) anyway, for a look")
    } catch let error as StopTraceError {
      failures = [error.message]
    } catch {
      failures = ["cannot write \(path): \(error.localizedDescription)"]
    }
    for failure in failures { sink("stop trace: \(failure)\n") }
    return false
  }
}
