import Synchronization

/// Kernel threads that a test, benchmark or the demo starts on chosen CPUs and then
/// waits for: each runs one function with one argument and ends. What tests used to
/// post to a CPU's idle loop runs as one of these.
///
/// Waiting: the threads on the waiter's own CPU can only run while the waiter sleeps
/// (threads of one class do not preempt each other), so the waiter sleeps on a
/// `Completion` each of them completes at its end; the threads on other CPUs it awaits
/// with a bounded `waitUntil`. The sleep has no timer of its own: it is bounded by the
/// work of the threads it waits for, each of which must itself be bounded (every test
/// function here is), and by the harness's bound on the boot.
///
/// Each started thread holds a reference to the group until its very end, so a group
/// given up on by a timed-out `wait` lives on until its last thread has ended. What the
/// threads are given as arguments is the caller's to keep alive. Allocate, start and
/// wait from one thread (thread context: it allocates).
final class ThreadGroup {
  /// What one thread runs, and whether it has ended.
  private struct Member: ~Copyable {
    /// The thread's reference, released as its last act.
    let group: Unmanaged<ThreadGroup>
    let function: CallFunction
    let argument: UnsafeMutableRawPointer?
    let name: ThreadName
    let cpu: CPUIndex
    /// Set (release) as the thread's last touch of the group; pairs with the acquire
    /// in `wait`.
    let ended = Atomic<Bool>(false)
  }

  /// Most threads one group holds.
  let capacity: Int
  private let members: UnsafeMutablePointer<Member>
  private var count = 0
  private var countHere = 0
  /// The CPU of the thread that made the group, and waits for it.
  private let waiter: CPUIndex
  /// Completed once by each member that ran on `waiter`'s CPU, at its end.
  private let endedHere = Completion<X86_64Platform>()
  /// Members ended; release by each member, acquire by `wait`.
  private let ended = Atomic<Int>(0)

  /// An empty group for at most `capacity` threads, waited for from the running CPU.
  init(capacity: Int) {
    self.capacity = capacity
    members = .allocate(capacity: capacity)
    waiter = X86_64Platform.currentCPU
  }

  deinit {
    members.deinitialize(count: count)
    members.deallocate()
  }

  /// Creates a thread named `name` on `cpu` that runs `function(argument)` and ends,
  /// and starts it. Thread context (it allocates the thread and its stack).
  func start(
    _ name: ThreadName, on cpu: CPUIndex, _ function: CallFunction, _ argument: UnsafeMutableRawPointer?
  ) {
    precondition(count < capacity, "ThreadGroup: more threads than its capacity")
    let member = members + count
    member.initialize(
      to: Member(group: .passRetained(self), function: function, argument: argument, name: name, cpu: cpu))
    count += 1
    if cpu == waiter { countHere += 1 }
    let thread = Threads.create(
      name, on: cpu, function: ThreadGroup.body, argument: UnsafeMutableRawPointer(member))
    Threads.start(thread)
  }

  /// Each member's thread: the function, its end announced, its reference dropped.
  private static let body: CallFunction = { info in
    let member = info!.assumingMemoryBound(to: Member.self)
    member.pointee.function(member.pointee.argument)
    let reference = member.pointee.group  // no reference count: a plain value
    announceEnd(of: member)
    // The last touch: this may free the group, the member included.
    reference.release()
  }

  /// Marks `member` ended, and on the waiter's CPU completes `endedHere`. Every strong
  /// reference it takes ends with it, before the caller's release.
  @inline(never)
  private static func announceEnd(of member: UnsafeMutablePointer<Member>) {
    let group = member.pointee.group.takeUnretainedValue()
    // On the waiter's CPU the waiter cannot run before this thread ends (no
    // preemption among equals), so the completion may come first.
    if member.pointee.cpu == group.waiter { group.endedHere.complete(in: Threads.scheduler) }
    // Releases pair with the acquires in wait(): the function's effects are visible
    // to the waiter once it sees the thread ended.
    member.pointee.ended.store(true, ordering: .releasing)
    group.ended.wrappingAdd(1, ordering: .releasing)
  }

  /// Number of threads that have ended so far.
  var endedCount: Int { ended.load(ordering: .acquiring) }

  /// Waits until every started thread has ended, `milliseconds` in all: sleeps while
  /// this CPU's own run, then waits for those on other CPUs. Returns nil once all have
  /// ended, or else a report of what was awaited, on which CPU, for how long, naming
  /// the first threads still running (which keep the group alive until they end).
  /// Thread context, on the CPU that made it.
  func wait(milliseconds: UInt64) -> LogLine? {
    precondition(X86_64Platform.currentCPU == waiter, "ThreadGroup waited for from another CPU")
    let start = Clock.nanoseconds()
    let deadline = start + milliseconds * 1_000_000
    while countHere > 0 {
      let now = Clock.nanoseconds()
      guard now < deadline, endedHere.wait(in: Threads.scheduler, timeoutNanoseconds: deadline - now) else {
        break
      }
      countHere -= 1
    }
    let left = deadline > Clock.nanoseconds() ? (deadline - Clock.nanoseconds()) / 1_000_000 : 0
    if countHere == 0 && waitUntil(milliseconds: left, { endedCount == count }) { return nil }
    var report: LogLine =
      "CPU \(waiter) waited \((Clock.nanoseconds() - start) / 1_000_000) ms: \(count - endedCount) of \(count) threads had not ended:"
    var named = 0
    for index in 0..<count where !members[index].ended.load(ordering: .relaxed) && named < 4 {
      report.append(" ")
      report = "\(line: report)\(members[index].name) on CPU \(members[index].cpu)"
      named += 1
    }
    return report
  }
}
