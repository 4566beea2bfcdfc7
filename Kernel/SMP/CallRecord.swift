import Synchronization

/// One queued cross-CPU call.
/// Linux: `struct call_single_data` (csd).
///
/// A record belongs to its sender while LOCK is set: from the moment it is queued until
/// the target has run the function and cleared LOCK. Only then may it be reused or, for a
/// record on the caller's stack, go out of scope.
public struct CallRecord: ~Copyable {
  /// Link in the target's queue; written by the sender before the push, read by the
  /// target after it took the list.
  var next: UnsafeMutablePointer<CallRecord>? = nil
  /// `CallFlags` bits.
  let flags = Atomic<UInt32>(0)
  /// The CPU that sent the call, woken by the target if it naps while waiting.
  var sender: Int32 = -1
  /// The CPU the call was sent to, for the watchdog's report and re-sent IPI.
  var target: Int32 = -1
  /// What to run, and with what.
  public var function: CallFunction?
  public var info: UnsafeMutableRawPointer?

  /// A record that runs `function(info)`.
  public init(function: CallFunction? = nil, info: UnsafeMutableRawPointer? = nil) {
    self.function = function
    self.info = info
  }

  /// Whether the record is in flight (queued or running).
  public var isLocked: Bool {
    // Acquire pairs with the release in CallFlags.unlock(): a record seen unlocked has
    // finished running, so its memory may be reused.
    flags.load(ordering: .acquiring) & CallFlags.lock != 0
  }
}

/// The flag bits of a `CallRecord` (Linux: CSD_FLAG_LOCK, CSD_FLAG_WAIT).
enum CallFlags {
  /// The record is owned by a call in flight.
  static let lock: UInt32 = 0x01
  /// The sender waits for the function to finish.
  static let wait: UInt32 = 0x02
  /// The waiting sender is napping in `waitForInterrupt` and wants an interrupt when
  /// the record is unlocked (Lockstep's addition; Linux's waiters only spin).
  static let sleeping: UInt32 = 0x04

  /// Takes an unlocked record for a new call. Linux sets the flags and then needs
  /// `smp_mb()` so the later field writes cannot pass it; here the record reaches the
  /// target only through the queue push, whose release orders every field write.
  static func lock(_ record: UnsafeMutablePointer<CallRecord>, waiting: Bool) {
    record.pointee.flags.store(lock | (waiting ? wait : 0), ordering: .relaxed)
  }

  /// Hands the record back once its function has returned. Release: the function's
  /// effects and our last reads of the record happen before the sender sees it free
  /// (Linux: `smp_mb()` then clearing LOCK); pairs with the acquire in `isLocked`.
  /// Returns whether the sender was napping and must be woken. An exchange, not a
  /// store, so that it and the sender's `markSleeping` cannot miss each other.
  static func unlock(_ record: UnsafeMutablePointer<CallRecord>) -> Bool {
    record.pointee.flags.exchange(0, ordering: .releasing) & sleeping != 0
  }

  /// For a waiting sender about to nap: asks to be woken at unlock. Returns false if
  /// the record is already unlocked (then it must not nap). Relaxed: both this and
  /// `unlock` modify the same word, so one sees the other.
  static func markSleeping(_ record: UnsafeMutablePointer<CallRecord>) -> Bool {
    var current = record.pointee.flags.load(ordering: .relaxed)
    while current & lock != 0 {
      if current & sleeping != 0 { return true }
      let exchange = record.pointee.flags.compareExchange(
        expected: current, desired: current | sleeping, ordering: .relaxed)
      if exchange.exchanged { return true }
      current = exchange.original
    }
    return false
  }
}

/// One CPU's queue of incoming calls: a lock-free singly linked list (Linux: `llist`)
/// that any CPU pushes onto and only its owner empties, all at once.
///
/// With many producers and a consumer that only ever takes the whole list, no ABA
/// problem arises: a node is never removed singly while others push.
struct CallQueue: ~Copyable {
  private let head = Atomic<UnsafeMutablePointer<CallRecord>?>(nil)

  init() {}

  /// Pushes `record`; returns true if the queue was empty, the one case in which the
  /// owner must be interrupted (a non-empty queue has an interrupt on its way already).
  func push(_ record: UnsafeMutablePointer<CallRecord>) -> Bool {
    var first = head.load(ordering: .relaxed)
    while true {
      record.pointee.next = first
      // Release: the record's fields and link are visible to the owner that takes the
      // list; pairs with the acquire in takeAll().
      let exchange = head.compareExchange(
        expected: first, desired: record, successOrdering: .releasing, failureOrdering: .relaxed)
      if exchange.exchanged { return first == nil }
      first = exchange.original
    }
  }

  /// Takes every queued record, oldest first. Owner CPU only.
  func takeAll() -> UnsafeMutablePointer<CallRecord>? {
    // Acquire pairs with the release in push(): the records are complete.
    var newestFirst = head.exchange(nil, ordering: .acquiring)
    var oldestFirst: UnsafeMutablePointer<CallRecord>? = nil
    while let record = newestFirst {
      newestFirst = record.pointee.next
      record.pointee.next = oldestFirst
      oldestFirst = record
    }
    return oldestFirst
  }

  /// Whether anything is queued. A hint: it may change right after.
  var isEmpty: Bool { head.load(ordering: .relaxed) == nil }
}
