/// Which of a thread's two links a `ThreadList` uses.
public enum ThreadLink: Sendable {
  /// `KernelThread.runLink`: run queues and the list of ended threads.
  case run
  /// `KernelThread.waitLink`: completions' and mutexes' waiters.
  case wait
}

/// A first-in, first-out list of threads linked through one of their links: a run
/// queue's class, or a wait queue. Not thread-safe: its owner holds a lock.
public struct ThreadList: ~Copyable {
  private var head: UnsafeMutablePointer<KernelThread>? = nil
  private var tail: UnsafeMutablePointer<KernelThread>? = nil
  private let link: ThreadLink
  /// How many threads are in the list.
  public private(set) var count = 0

  /// An empty list linking its threads through `link`.
  public init(_ link: ThreadLink = .run) {
    self.link = link
  }

  private func next(of thread: UnsafeMutablePointer<KernelThread>) -> UnsafeMutablePointer<KernelThread>? {
    link == .run ? thread.pointee.runLink : thread.pointee.waitLink
  }

  private func setNext(
    of thread: UnsafeMutablePointer<KernelThread>, to next: UnsafeMutablePointer<KernelThread>?
  ) {
    if link == .run { thread.pointee.runLink = next } else { thread.pointee.waitLink = next }
  }

  /// Whether the list is empty.
  public var isEmpty: Bool { head == nil }

  /// The first thread, without removing it.
  public var first: UnsafeMutablePointer<KernelThread>? { head }

  /// Appends `thread`, which must be in no list.
  public mutating func append(_ thread: UnsafeMutablePointer<KernelThread>) {
    setNext(of: thread, to: nil)
    if let last = tail { setNext(of: last, to: thread) } else { head = thread }
    tail = thread
    count += 1
  }

  /// Removes and returns the first thread.
  public mutating func removeFirst() -> UnsafeMutablePointer<KernelThread>? {
    guard let first = head else { return nil }
    head = next(of: first)
    if head == nil { tail = nil }
    setNext(of: first, to: nil)
    count -= 1
    return first
  }

  /// Whether `thread` is in the list.
  public func contains(_ thread: UnsafeMutablePointer<KernelThread>) -> Bool {
    var cursor = head
    while let current = cursor {
      if current == thread { return true }
      cursor = next(of: current)
    }
    return false
  }

  /// Removes `thread` if it is in the list; returns whether it was.
  public mutating func remove(_ thread: UnsafeMutablePointer<KernelThread>) -> Bool {
    var previous: UnsafeMutablePointer<KernelThread>? = nil
    var cursor = head
    while let current = cursor {
      if current == thread {
        if let previous { setNext(of: previous, to: next(of: current)) } else { head = next(of: current) }
        if tail == current { tail = previous }
        setNext(of: current, to: nil)
        count -= 1
        return true
      }
      previous = current
      cursor = next(of: current)
    }
    return false
  }
}

/// One CPU's runnable threads by class: stopper threads first, then normal threads in
/// the order they became runnable. The idle thread is never queued: it runs when both
/// lists are empty. Linux: `struct rq` with its per-class run lists. Not thread-safe:
/// the scheduler holds the CPU's run-queue lock around every use.
public struct RunQueue: ~Copyable {
  private var stoppers = ThreadList()
  private var normal = ThreadList()

  /// An empty run queue.
  public init() {}

  /// Queues a runnable thread at the tail of its class. Idle threads are not queued.
  public mutating func enqueue(_ thread: UnsafeMutablePointer<KernelThread>) {
    switch thread.pointee.priority {
    case .stopper: stoppers.append(thread)
    case .normal: normal.append(thread)
    case .idle: preconditionFailure("an idle thread is never queued")
    }
  }

  /// Removes and returns the thread that should run next, nil when only idle remains.
  public mutating func dequeueNext() -> UnsafeMutablePointer<KernelThread>? {
    stoppers.removeFirst() ?? normal.removeFirst()
  }

  /// Takes `thread` out of its class's list; returns whether it was queued.
  public mutating func remove(_ thread: UnsafeMutablePointer<KernelThread>) -> Bool {
    switch thread.pointee.priority {
    case .stopper: stoppers.remove(thread)
    case .normal: normal.remove(thread)
    case .idle: false
    }
  }

  /// The class of the thread `dequeueNext` would return, nil when empty.
  public var highestPriority: ThreadPriority? {
    if !stoppers.isEmpty { return .stopper }
    return normal.isEmpty ? nil : .normal
  }

  /// Queued threads of every class.
  public var count: Int { stoppers.count + normal.count }
}
