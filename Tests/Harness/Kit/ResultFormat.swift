import Foundation

// How the harness reports: the text of a judged boot and of the totals, and where it goes.

/// The text of the harness's report lines.
public enum ResultFormat {
  /// How many log lines a failure shows.
  public static let tailLines = 20

  /// The report for one judged boot: `PASS  name  (1.2 s)`, or `FAIL  name  (reason)` followed
  /// by the last `tailLines` lines of the serial log, indented by four spaces.
  /// - Parameters:
  ///   - name: The configuration's name.
  ///   - verdict: The judgement.
  ///   - record: The boot.
  /// - Returns: The report, ending in a newline.
  public static func report(name: String, verdict: Verdict, record: BootRecord) -> String {
    var text = headline(name: name, verdict: verdict, record: record)
    guard !verdict.passed else { return text }
    let tail = record.log.tail(tailLines)
    if tail.isEmpty {
      text += "    (serial log is empty)\n"
    }
    for line in tail {
      text += "    \(line)\n"
    }
    return text
  }

  /// The first line of `report`, alone: `PASS  name  (1.2 s)` or `FAIL  name  (reason)`.
  /// - Returns: The line, ending in a newline.
  public static func headline(name: String, verdict: Verdict, record: BootRecord) -> String {
    verdict.passed
      ? "PASS  \(name)  (\(record.elapsed.secondsText))\n" : "FAIL  \(name)  (\(verdict.reason))\n"
  }

  /// The closing line: `N passed, N failed`, and `, N skipped` when any were.
  public static func summary(passed: Int, failed: Int, skipped: Int = 0) -> String {
    skipped > 0
      ? "\(passed) passed, \(failed) failed, \(skipped) skipped\n"
      : "\(passed) passed, \(failed) failed\n"
  }
}

// Where the harness's own report goes: written unbuffered, one whole report per call, so lines
// from concurrent boots never interleave and each appears as soon as it is complete.

/// A sink for report text.
public typealias ReportSink = @Sendable (String) -> Void

/// The harness's standard streams.
public enum Console {
  /// Writes `text` to stdout at once.
  public static let standardOutput: ReportSink = { text in
    FileHandle.standardOutput.write(Data(text.utf8))
  }

  /// Writes `text` to stderr at once.
  public static let standardError: ReportSink = { text in
    FileHandle.standardError.write(Data(text.utf8))
  }
}
