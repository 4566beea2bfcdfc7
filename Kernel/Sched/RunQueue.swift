/// A first-in, first-out list of threads linked through `KernelThread.next`: a run
/// queue's class, or a wait queue. Not thread-safe: its owner holds a lock.
public struct ThreadList: ~Copyable {
  private var head: UnsafeMutablePointer<KernelThread>? = nil
  private var tail: UnsafeMutablePointer<KernelThread>? = nil
  /// How many threads are in the list.
  public private(set) var count = 0

  /// An empty list.
  public init() {}

  /// Whether the list is empty.
  public var isEmpty: Bool { head == nil }

  /// The first thread, without removing it.
  public var first: UnsafeMutablePointer<KernelThread>? { head }

  /// Appends `thread`, which must be in no list.
  public mutating func append(_ thread: UnsafeMutablePointer<KernelThread>) {
    thread.pointee.next = nil
    if let last = tail { last.pointee.next = thread } else { head = thread }
    tail = thread
    count += 1
  }

  /// Removes and returns the first thread.
  public mutating func removeFirst() -> UnsafeMutablePointer<KernelThread>? {
    guard let first = head else { return nil }
    head = first.pointee.next
    if head == nil { tail = nil }
    first.pointee.next = nil
    count -= 1
    return first
  }

  /// Whether `thread` is in the list.
  public func contains(_ thread: UnsafeMutablePointer<KernelThread>) -> Bool {
    var cursor = head
    while let current = cursor {
      if current == thread { return true }
      cursor = current.pointee.next
    }
    return false
  }

  /// Removes `thread` if it is in the list; returns whether it was.
  public mutating func remove(_ thread: UnsafeMutablePointer<KernelThread>) -> Bool {
    var previous: UnsafeMutablePointer<KernelThread>? = nil
    var cursor = head
    while let current = cursor {
      if current == thread {
        if let previous { previous.pointee.next = current.pointee.next } else { head = current.pointee.next }
        if tail == current { tail = previous }
        current.pointee.next = nil
        count -= 1
        return true
      }
      previous = current
      cursor = current.pointee.next
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

  /// The class of the thread `dequeueNext` would return, nil when empty.
  public var highestPriority: ThreadPriority? {
    if !stoppers.isEmpty { return .stopper }
    return normal.isEmpty ? nil : .normal
  }

  /// Queued threads of every class.
  public var count: Int { stoppers.count + normal.count }
}
