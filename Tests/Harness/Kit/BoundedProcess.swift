import Foundation

// Runs a child process under a wall-clock bound. Its output goes to files, never to pipes: a
// killed QEMU (or a fake one's orphaned `sleep`) can then never block the harness on a read.

/// A child process run to completion or to its bound, whichever comes first.
public enum BoundedProcess {
  /// Grace between SIGTERM and SIGKILL when the bound expires.
  public static let killGrace: Duration = .seconds(2)

  /// Runs `executable` and waits for it, at most `bound`; on expiry sends SIGTERM, then
  /// SIGKILL after `killGrace`. Blocks the calling thread.
  /// - Parameters:
  ///   - executable: A path, or a name looked up in `PATH`.
  ///   - arguments: The arguments.
  ///   - outputPath: File that receives the child's stderr, and its stdout unless
  ///     `inheritStdout` (created or truncated).
  ///   - inheritStdout: Whether stdin and stdout stay the harness's own (live console).
  ///   - bound: The wall-clock bound.
  ///   - stopper: Lets another thread end the process before the bound (`.stopped`).
  /// - Returns: How the process ended.
  public static func run(
    _ executable: String, arguments: [String], outputPath: String, inheritStdout: Bool = false,
    bound: Duration, stopper: ProcessStopper? = nil
  ) -> Termination {
    guard let path = resolve(executable) else {
      return .failedToStart("\(executable) not found in PATH")
    }
    guard FileManager.default.createFile(atPath: outputPath, contents: nil),
      let output = FileHandle(forWritingAtPath: outputPath)
    else { return .failedToStart("cannot create \(outputPath)") }
    defer { try? output.close() }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardError = output
    if !inheritStdout {
      process.standardInput = FileHandle.nullDevice
      process.standardOutput = output
    }
    let exited = DispatchSemaphore(value: 0)
    // Woken by the exit or by the stopper, whichever comes first; `exited` tells them apart.
    let wake = stopper?.wake ?? DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in
      exited.signal()
      wake.signal()
    }
    do {
      try process.run()
    } catch {
      return .failedToStart("\(path): \(error.localizedDescription)")
    }
    guard wake.wait(timeout: .now() + bound.dispatchInterval) == .success else {
      stop(process, exited: exited)
      return .timedOut(bound)
    }
    guard exited.wait(timeout: .now()) == .success else {
      stop(process, exited: exited)
      return .stopped
    }
    let status = process.terminationStatus
    return process.terminationReason == .exit ? .exited(status) : .signaled(status)
  }

  /// SIGTERM, then SIGKILL if the process outlives the grace period; returns once it is gone.
  private static func stop(_ process: Process, exited: DispatchSemaphore) {
    process.terminate()
    guard exited.wait(timeout: .now() + killGrace.dispatchInterval) == .timedOut else { return }
    kill(process.processIdentifier, SIGKILL)
    exited.wait()
  }

  /// The full path of `executable`: itself if it names a path, else the first match in `PATH`.
  /// - Returns: The path, or nil if no executable file matches.
  public static func resolve(_ executable: String) -> String? {
    let manager = FileManager.default
    if executable.contains("/") {
      return manager.isExecutableFile(atPath: executable) ? executable : nil
    }
    let searchPath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return searchPath.split(separator: ":")
      .map { "\($0)/\(executable)" }
      .first { manager.isExecutableFile(atPath: $0) }
  }
}

/// Ends a `BoundedProcess.run` early, from another thread: the run sends SIGTERM, then
/// SIGKILL after the grace, and returns `.stopped` (or the exit status if the process had
/// exited already). One stopper serves one run.
public final class ProcessStopper: Sendable {
  /// Signalled by `stop()` and by the process's exit.
  fileprivate let wake = DispatchSemaphore(value: 0)

  /// Creates a stopper for one run.
  public init() {}

  /// Asks the run to end its process; returns at once. A second call does nothing more.
  public func stop() {
    wake.signal()
  }
}

extension Duration {
  /// The duration as a Dispatch interval, to nanosecond precision.
  var dispatchInterval: DispatchTimeInterval {
    let (seconds, attoseconds) = components
    return .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
  }
}
