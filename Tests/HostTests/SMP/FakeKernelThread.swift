import LockstepKernel

/// The host side of one kernel thread: its `KernelThread`, the host thread behind it,
/// and its baton. `KernelThread.savedContext` holds this object's address: the fake's
/// "saved context" is the identity of the host thread to resume.
final class FakeKernelThread: @unchecked Sendable {
  /// The kernel's view of the thread.
  let thread: UnsafeMutablePointer<KernelThread>
  /// Its CPU.
  unowned let cpu: FakeSchedCPU
  /// Whether this thread never ends by itself (an idle or stopper thread): its host
  /// thread leaves when the machine stops, from wherever it waits for its baton.
  let leavesWhenStopping: Bool
  private let monitor = Monitor()
  /// Whether this thread may run (its CPU was handed to it). Guarded by `monitor`.
  private var hasBaton = false
  /// Whether its body returned. Guarded by `monitor`.
  private var finished = false

  /// A new kernel thread `name` of `priority` on `cpu`; no host thread yet.
  init(name: ThreadName, priority: ThreadPriority, cpu: FakeSchedCPU, leavesWhenStopping: Bool = false) {
    self.cpu = cpu
    self.leavesWhenStopping = leavesWhenStopping
    thread = .allocate(capacity: 1)
    thread.initialize(
      to: KernelThread(name: name, priority: priority, cpu: cpu.index, function: nil, argument: nil))
    thread.pointee.savedContext = UInt64(UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque()))
  }

  deinit {
    thread.deinitialize(count: 1)
    thread.deallocate()
  }

  /// The object behind `thread` (which must be a fake's).
  static func backing(_ thread: UnsafeMutablePointer<KernelThread>) -> FakeKernelThread {
    let raw = UnsafeRawPointer(bitPattern: UInt(thread.pointee.savedContext))!
    return Unmanaged<FakeKernelThread>.fromOpaque(raw).takeUnretainedValue()
  }

  /// Lets this thread's host thread run: its CPU is handed to it.
  func giveBaton() {
    monitor.withLock {
      hasBaton = true
      monitor.broadcast()
    }
  }

  /// Waits for the baton, in bounded slices: once the machine is abandoned (a test
  /// failed or expected a panic), or is stopping and this thread never ends by itself,
  /// the host thread leaves instead.
  func takeBaton() {
    while true {
      let taken = monitor.withLock {
        if !hasBaton { monitor.wait(until: HostClock.deadline(after: 0.05)) }
        defer { hasBaton = false }
        return hasBaton
      }
      if taken { return }
      if cpu.machine.isAbandoned || (leavesWhenStopping && cpu.machine.isStopping) { cpu.machine.leave() }
    }
  }

  /// Records that the body returned.
  func markFinished() {
    monitor.withLock {
      finished = true
      monitor.broadcast()
    }
  }

  /// Waits until the body returned or `deadline` passes; returns whether it did.
  func waitFinished(until deadline: UInt64) -> Bool {
    monitor.wait(until: deadline) { finished }
  }

  /// Whether the body returned.
  var isFinished: Bool { monitor.withLock { finished } }

  /// `name state finished` for failure reports.
  var summary: String {
    let name = thread.pointee.name
    let number = name.number.map { "/\($0)" } ?? ""
    return "\(name.prefix)\(number)@\(cpu.index.rawValue):\(thread.pointee.state)\(isFinished ? "+done" : "")"
  }
}
