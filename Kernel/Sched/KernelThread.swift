import Synchronization

/// Which class a thread is scheduled in; a runnable thread of a higher class always
/// runs before one of a lower class on the same CPU. Linux: stop_sched_class, then the
/// fair class (here plain FIFO), then the idle class.
public enum ThreadPriority: UInt8, Comparable, Sendable {
  /// The CPU's idle thread: runs only when nothing else can.
  case idle = 0
  /// Ordinary kernel threads, first come first served.
  case normal = 1
  /// Per-CPU stopper threads (`migration/N`): take the CPU from anything else at once.
  case stopper = 2

  public static func < (lhs: ThreadPriority, rhs: ThreadPriority) -> Bool {
    lhs.rawValue < rhs.rawValue
  }
}

/// Where a thread is. Linux: TASK_RUNNING (queued or on a CPU), TASK_UNINTERRUPTIBLE,
/// TASK_DEAD.
public enum ThreadState: UInt8, Sendable {
  /// Created, not started yet.
  case new = 0
  /// In its CPU's run queue, waiting for the CPU.
  case runnable = 1
  /// On its CPU now.
  case running = 2
  /// Waiting for a wake-up; in no run queue.
  case sleeping = 3
  /// Its function returned; it will never run again.
  case dead = 4
}

/// A kernel thread: its saved context, its class, its CPU and its name. Linux:
/// `struct task_struct`, the parts a kernel thread needs.
///
/// Threads are bound to the CPU they were created for (Linux: `kthread_bind`): the
/// scheduler never moves them, so a thread's CPU never changes under it.
public struct KernelThread: ~Copyable {
  /// The saved stack pointer while the thread is off its CPU; the platform's context
  /// switch writes and reads it. Meaningless while the thread runs.
  public var savedContext: UInt64 = 0
  /// The `ThreadState`, changed by the thread's own CPU under its run-queue lock, or by a
  /// waker under the same lock (see `Scheduler.wake`).
  let stateWord = Atomic<UInt8>(ThreadState.new.rawValue)
  /// The thread's class.
  public let priority: ThreadPriority
  /// The CPU it runs on, always.
  public let cpu: CPUIndex
  /// What it runs, and with what.
  public let function: CallFunction?
  public let argument: UnsafeMutableRawPointer?
  /// Its stack, [stackBottom, stackTop); 0 for a thread adopted on its own stack.
  public var stackBottom: UInt64 = 0
  public var stackTop: UInt64 = 0
  /// Link in its run queue (or its CPU's list of ended threads); under the run-queue
  /// lock.
  var runLink: UnsafeMutablePointer<KernelThread>? = nil
  /// Link in a wait queue (a completion's or a mutex's waiters); under that queue's
  /// lock. Separate from `runLink`: a thread preempted after it joined a wait queue is
  /// in its run queue too until it sleeps (Linux: a task's run list and its wait-queue
  /// entries are distinct).
  var waitLink: UnsafeMutablePointer<KernelThread>? = nil
  /// Whether it is in its CPU's run queue (Linux: on_rq). Separate from the state: a
  /// thread preempted between `prepareToSleep` and `schedule()` stays queued while
  /// sleeping. Under the run-queue lock.
  var isQueued = false
  /// Its name, `migration/3` style, for reports.
  public let name: ThreadName
  /// Mutexes it holds now (`Mutex`), for the report of a thread that ends holding one.
  /// Changed only by the thread itself (the owner), so a plain field.
  public var mutexesHeld: Int = 0

  /// A thread of `priority` bound to `cpu` that will run `function(argument)`.
  public init(
    name: ThreadName, priority: ThreadPriority, cpu: CPUIndex, function: CallFunction?,
    argument: UnsafeMutableRawPointer?
  ) {
    self.name = name
    self.priority = priority
    self.cpu = cpu
    self.function = function
    self.argument = argument
  }

  /// Where the thread is now. Relaxed: every change that matters is made under the
  /// run-queue lock, which orders it; this read is for checks and reports.
  public var state: ThreadState {
    ThreadState(rawValue: stateWord.load(ordering: .relaxed))!
  }
}

/// A thread's name: a static prefix and an optional number, printed `prefix/number`
/// (Linux's `migration/3`), or `prefix` alone. No allocation, so it can be reported
/// from any context.
public struct ThreadName: Sendable {
  public let prefix: StaticString
  public let number: Int?

  /// `prefix/number`, or `prefix` when `number` is nil.
  public init(_ prefix: StaticString, _ number: Int? = nil) {
    self.prefix = prefix
    self.number = number
  }
}

extension LogLine.Interpolation {
  /// A thread name as `prefix/number`.
  public mutating func appendInterpolation(_ name: ThreadName) {
    appendInterpolation(name.prefix)
    if let number = name.number {
      appendLiteral("/")
      appendInterpolation(number)
    }
  }
}
