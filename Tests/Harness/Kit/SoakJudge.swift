// What a soak's counter lines must show, beyond the KTAP result the kernel gives it (which
// already fails on any error): the harness checks the counters itself, so a kernel that
// miscounted, or stopped printing, cannot pass on its word alone.

/// Judges the counter lines of one `ktest=soak` boot.
public enum SoakJudge {
  /// From this many seconds of soak on, every category must have run: a round lasts
  /// about five seconds (four of cross-calls, one of stops and hotplug).
  public static let mixSeconds = 10
  /// The kernel prints progress every ten seconds; from this long on, at least one line
  /// must have come before the last.
  public static let progressSeconds = 25

  /// Every way `lines` (the log's counter lines, in order) falls short of a clean soak of
  /// `seconds` seconds.
  /// - Returns: The failures; none for a clean soak.
  public static func failures(_ lines: [SoakProgress], seconds: Int) -> [String] {
    guard let last = lines.last, last.isFinal else {
      let progress = lines.last.map { ", last progress at \($0.summary)" } ?? ""
      return ["no 'soak end' counter line\(progress)"]
    }
    var failures: [String] = []
    if last.errors != 0 {
      failures.append(
        "\(last.errors) errors (calls \(last.callErrors), stops \(last.stopErrors), "
          + "hotplug \(last.hotplugErrors))")
    }
    if last.callErrors + last.stopErrors + last.hotplugErrors != last.errors
      || last.calls + last.stops + last.hotplug != last.operations
    {
      failures.append("the totals disagree with the categories: \(last.summary)")
    }
    if last.seconds < seconds {
      failures.append("ended after \(last.seconds) s of \(seconds)")
    }
    if last.calls == 0 || (seconds >= mixSeconds && (last.stops == 0 || last.hotplug == 0)) {
      failures.append("not every category ran: \(last.summary)")
    }
    if seconds >= progressSeconds && lines.count < 2 {
      failures.append("no progress line before the end")
    }
    if let bad = lines.first(where: { $0.errors > last.errors || $0.operations > last.operations }) {
      failures.append("counters went down: \(bad.summary), then \(last.summary)")
    }
    return failures
  }
}
