import Foundation
import Glibc
import Synchronization

// Boots QEMU with its serial console on a Unix socket (`SerialSink.socket`) and holds a
// `ShellScript`'s conversation through it. QEMU runs under `BoundedProcess.run` on a
// thread of its own, so the wall-clock bound and the kill logic stay in one place; the
// session stops it early when the script fails or ends with QEMU still running.

/// A shell script run against a booting kernel.
public enum ShellSession {
  /// How long QEMU may take to serve its console socket.
  public static let connectBound: Duration = .seconds(10)
  /// How long QEMU may take to exit once its console has closed.
  public static let exitBound: Duration = .seconds(10)
  /// The longest socket path used as is: `sun_path` holds 108 bytes with the NUL; a longer
  /// one moves to a fresh directory in /tmp.
  public static let longestSocketPath = 100

  /// What a session found.
  public struct Result: Sendable {
    /// The script's failures, each naming its step (or the boot, or the socket).
    public var failures: [String]
    /// How QEMU ended.
    public var termination: Termination
  }

  /// Starts QEMU, connects to its console socket, runs `script`, and waits for QEMU to end.
  /// Blocks the calling thread, at most about `bound` plus the kill grace.
  /// - Parameters:
  ///   - script: The conversation.
  ///   - qemu: The QEMU executable.
  ///   - arguments: QEMU's arguments for a console socket at the given path.
  ///   - socketPath: Where the socket should be; a path too long for `sun_path` is replaced
  ///     by one in a temporary directory.
  ///   - logPath: File that receives everything read from the console (created or
  ///     truncated), to the end of the session.
  ///   - outputPath: File for QEMU's own stdout and stderr.
  ///   - bound: The wall-clock bound of the whole boot.
  /// - Returns: The failures and how QEMU ended.
  public static func run(
    _ script: ShellScript, qemu: String, arguments: (_ socketPath: String) -> [String],
    socketPath: String, logPath: String, outputPath: String, bound: Duration
  ) -> Result {
    guard FileManager.default.createFile(atPath: logPath, contents: nil),
      let log = FileHandle(forWritingAtPath: logPath)
    else {
      return Result(failures: ["cannot create \(logPath)"], termination: .failedToStart("no log file"))
    }
    defer { try? log.close() }
    guard let place = SocketPlace(preferred: socketPath) else {
      return Result(
        failures: ["cannot make a directory for the console socket"],
        termination: .failedToStart("no console socket"))
    }
    defer { place.remove() }
    let qemuRun = BackgroundRun(qemu, arguments: arguments(place.path), outputPath: outputPath, bound: bound)
    let descriptor: Int32
    switch connect(to: place.path, while: qemuRun) {
    case .connected(let connected):
      descriptor = connected
    case .failed(let failure):
      qemuRun.stopper.stop()
      return Result(failures: [failure], termination: qemuRun.termination())
    }
    defer { close(descriptor) }
    let channel = SocketChannel(descriptor: descriptor, log: log)
    var conversation = ShellConversation(channel: channel)
    let failures = conversation.run(script) { qemuRun.termination(within: exitBound) }
    // Ends QEMU if the script failed or left it running; does nothing once it has exited.
    qemuRun.stopper.stop()
    // What the console printed after the script's last wait (a panic report's end), for
    // the log: until the socket closes behind QEMU, at most `exitBound`.
    let drainEnd = ContinuousClock.now + exitBound
    while case .data = channel.receive(before: drainEnd) {}
    return Result(failures: failures, termination: qemuRun.termination())
  }

  /// A connection attempt's result.
  enum Connection {
    /// The connected socket.
    case connected(Int32)
    /// Why there is none.
    case failed(String)
  }

  /// Connects to the socket QEMU serves at `path`, retrying until it exists and accepts,
  /// at most `connectBound`, and giving up at once if QEMU ends.
  /// - Returns: The connected socket, or why there is none.
  static func connect(to path: String, while qemuRun: BackgroundRun) -> Connection {
    let clock = ContinuousClock()
    let deadline = clock.now + connectBound
    while clock.now < deadline {
      if let termination = qemuRun.endedTermination {
        return .failed("QEMU ended before serving its console socket (\(termination.summary))")
      }
      if let descriptor = connectOnce(to: path) { return .connected(descriptor) }
      Thread.sleep(forTimeInterval: 0.02)
    }
    return .failed("waited \(connectBound.boundText) s for QEMU's console socket \(path)")
  }

  /// One attempt to connect a Unix stream socket to `path`.
  /// - Returns: The connected socket, or nil (no such socket yet, refused, path too long).
  private static func connectOnce(to path: String) -> Int32? {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard bytes.count < capacity else { return nil }
    withUnsafeMutableBytes(of: &address.sun_path) { sunPath in
      sunPath.copyBytes(from: bytes)
      sunPath[bytes.count] = 0
    }
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return nil }
    let connected = withUnsafePointer(to: &address) { pointer in
      pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
      }
    }
    guard connected else {
      close(descriptor)
      return nil
    }
    // A send never blocks for long: QEMU takes a byte whenever the UART has room, and a
    // wedged QEMU must fail the step, not hang the harness.
    var sendTimeout = timeval(tv_sec: 1, tv_usec: 0)
    setsockopt(
      descriptor, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
    return descriptor
  }
}

/// The console socket's path, in a temporary directory of its own when the preferred path
/// is too long for `sun_path`; `remove()` deletes the socket (and that directory).
struct SocketPlace {
  /// The socket's path.
  let path: String
  /// The temporary directory holding it, if one was made.
  private let directory: String?

  /// Picks the path; nil if a temporary directory was needed and could not be made.
  init?(preferred: String) {
    if preferred.utf8.count <= ShellSession.longestSocketPath {
      path = preferred
      directory = nil
    } else {
      var template = Array("/tmp/lockstep-shell-XXXXXX".utf8CString)
      guard let made = mkdtemp(&template) else { return nil }
      let directory = String(cString: made)
      self.directory = directory
      path = directory + "/console.sock"
    }
    // A socket left by an earlier run must not be mistaken for this QEMU's.
    try? FileManager.default.removeItem(atPath: path)
  }

  /// Deletes the socket and the temporary directory.
  func remove() {
    try? FileManager.default.removeItem(atPath: directory ?? path)
  }
}

/// A connected console socket as a `ShellChannel`: sends without SIGPIPE, waits with
/// poll(2) until the deadline.
struct SocketChannel: ShellChannel {
  /// The connected socket; the session closes it.
  let descriptor: Int32
  /// Where every byte read goes as well.
  let log: FileHandle

  func send(_ byte: UInt8) -> Bool {
    var byte = byte
    // MSG_NOSIGNAL: a QEMU that has exited makes this fail with EPIPE, not kill the harness.
    return Glibc.send(descriptor, &byte, 1, Int32(MSG_NOSIGNAL)) == 1
  }

  func receive(before deadline: ContinuousClock.Instant) -> ShellChannelRead {
    let clock = ContinuousClock()
    while true {
      let left = deadline - clock.now
      guard left > .zero else { return .timedOut }
      var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
      // Rounded up, so the wait never ends just short of the deadline.
      let (seconds, attoseconds) = left.components
      let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
      let ready = poll(&request, 1, milliseconds)
      if ready < 0 && errno == EINTR { continue }
      guard ready > 0 else {
        if ready == 0 { continue }
        return .closed
      }
      var buffer = [UInt8](repeating: 0, count: 4096)
      let count = read(descriptor, &buffer, buffer.count)
      if count > 0 {
        let data = Array(buffer[..<count])
        log.write(Data(data))
        return .data(data)
      }
      if count < 0 && errno == EINTR { continue }
      // 0: QEMU closed the console (it exits); < 0: the socket broke, which ends it too.
      return .closed
    }
  }
}

/// A `BoundedProcess.run` on a thread of its own, with a stopper and a bounded wait for its
/// end.
final class BackgroundRun: Sendable {
  /// Ends the process early.
  let stopper = ProcessStopper()
  private let ending = Mutex<Termination?>(nil)
  /// Signalled once the run is over; every waiter signals it again for the next.
  private let over = DispatchSemaphore(value: 0)

  /// Starts the run.
  init(_ executable: String, arguments: [String], outputPath: String, bound: Duration) {
    let stopper = stopper
    let thread = Thread { [self] in
      let termination = BoundedProcess.run(
        executable, arguments: arguments, outputPath: outputPath, bound: bound, stopper: stopper)
      ending.withLock { $0 = termination }
      over.signal()
    }
    thread.start()
  }

  /// How the process ended, or nil while it runs; does not wait.
  var endedTermination: Termination? {
    ending.withLock { $0 }
  }

  /// How the process ended, waiting at most `bound`; if it still runs then, it is stopped
  /// and the wait goes on until the run is over (at most the kill grace).
  func termination(within bound: Duration) -> Termination {
    if over.wait(timeout: .now() + bound.dispatchInterval) == .success {
      over.signal()
    } else {
      stopper.stop()
    }
    return termination()
  }

  /// How the process ended, waiting for the run to be over.
  func termination() -> Termination {
    over.wait()
    over.signal()
    // The run stores its termination before it signals `over`.
    return ending.withLock { $0 } ?? .stopped
  }
}
