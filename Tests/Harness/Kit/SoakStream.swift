import Foundation
import Synchronization

// Boots a soak configuration while following its serial log, so that each machine's progress
// shows on the terminal as it happens rather than minutes later. QEMU writes the log to a
// file (`-serial file:`); the follower reads what was added twice a second.

/// New complete lines of a growing file.
public struct LogFollower {
  /// The file followed.
  public let path: String
  private var offset: UInt64 = 0
  private var partial = Data()

  /// Follows `path` from its start; the file need not exist yet.
  public init(path: String) {
    self.path = path
  }

  /// The lines completed since the last call, without terminators. A file that shrank
  /// (made anew) is read again from its start.
  public mutating func newLines() -> [String] {
    guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
    defer { try? handle.close() }
    guard let end = try? handle.seekToEnd() else { return [] }
    if end < offset {
      offset = 0
      partial = Data()
    }
    guard end > offset, (try? handle.seek(toOffset: offset)) != nil,
      let data = try? handle.read(upToCount: Int(end - offset))
    else { return [] }
    offset += UInt64(data.count)
    partial.append(data)
    guard let lastNewline = partial.lastIndex(of: UInt8(ascii: "\n")) else { return [] }
    let complete = partial[partial.startIndex..<lastNewline]
    partial = Data(partial[(lastNewline + 1)...])
    return String(decoding: complete, as: UTF8.self)
      .split(separator: "\n", omittingEmptySubsequences: false)
      .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
  }
}

/// Streaming boots of soak configurations.
public enum SoakStream {
  /// How often the log is read.
  public static let pollInterval: Duration = .milliseconds(500)

  /// What the terminal shows of one serial line of machine `name`, or nil for a line it
  /// does not show: the counter lines (as `SoakProgress.summary`), the soak's opening
  /// line, and anything that reports trouble (errors of either torture, stuck
  /// operations, a failed KTAP result, a panic).
  public static func display(_ line: String, machine name: String) -> String? {
    if let progress = SoakProgress.parse(line[...]) {
      return "[\(name)] \(progress.isFinal ? "end " : "")\(progress.summary)\n"
    }
    let trouble = ["torture: ", "stuck: ", "not ok ", "PANIC", "soak: "]
    guard trouble.contains(where: { line.contains($0) }) else { return nil }
    return "[\(name)] \(line.trimmingCharacters(in: .whitespaces))\n"
  }

  /// Boots `config` with `booter`, sending each line `display` shows to `sink` as it
  /// arrives. Blocks until the boot is over (within the configuration's bound).
  /// - Returns: The record to judge.
  public static func boot(
    _ config: BootConfig, booter: Booter, sink: @escaping ReportSink
  ) -> BootRecord {
    let path = booter.logPath(of: config)
    // The follower must not read an earlier run's log before the boot replaces it.
    try? FileManager.default.removeItem(atPath: path)
    let result = RecordBox()
    let finished = DispatchSemaphore(value: 0)
    Thread {
      let record = booter.boot(config)
      result.record.withLock { $0 = record }
      finished.signal()
    }.start()
    var follower = LogFollower(path: path)
    var done = false
    while !done {
      done = finished.wait(timeout: .now() + pollInterval.dispatchInterval) == .success
      for line in follower.newLines() {
        if let text = display(line, machine: config.name) { sink(text) }
      }
    }
    return result.record.withLock { $0! }
  }
}

/// The record a boot thread hands back.
private final class RecordBox: Sendable {
  let record = Mutex<BootRecord?>(nil)
}
