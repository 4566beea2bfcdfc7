/// A deadline on one CPU and what to run when it passes: a thread's sleep timeout, the
/// scheduler's tick, a nap's bound. Linux: `struct hrtimer`, the parts used here.
///
/// The memory is the arming code's (often its stack): it must stay valid while the
/// timer is armed, so whoever arms a timer cancels it (or sees it fire) before
/// letting it go.
public struct Timer: ~Copyable {
  /// When it fires, in the platform's nanoseconds (`SMPPlatform.nanoseconds()`).
  public internal(set) var deadline: UInt64 = 0
  /// Run in the timer interrupt, interrupts off, when the deadline passes; nil only
  /// wakes the CPU.
  public var function: CallFunction?
  public var argument: UnsafeMutableRawPointer?
  /// Link in its CPU's queue.
  var next: UnsafeMutablePointer<Timer>? = nil
  /// Whether it is in a queue.
  public internal(set) var isArmed = false

  /// A timer that runs `function(argument)` when it fires.
  public init(function: CallFunction? = nil, argument: UnsafeMutableRawPointer? = nil) {
    self.function = function
    self.argument = argument
  }
}

/// One CPU's armed timers, earliest deadline first; the platform programs its one
/// hardware timer for `earliestDeadline`. Only its own CPU touches it, with interrupts
/// off, so it needs no lock. Insertion is linear: a CPU has a handful of timers.
public struct TimerQueue: ~Copyable {
  private var head: UnsafeMutablePointer<Timer>? = nil

  /// An empty queue.
  public init() {}

  /// The deadline the hardware timer must be set for, nil when nothing is armed.
  public var earliestDeadline: UInt64? { head?.pointee.deadline }

  /// Arms `timer` for `deadline` (re-arming it if it was armed). Among equal deadlines
  /// the earlier armed fires first. Returns whether it is now the earliest.
  @discardableResult
  public mutating func arm(_ timer: UnsafeMutablePointer<Timer>, deadline: UInt64) -> Bool {
    if timer.pointee.isArmed { _ = cancel(timer) }
    timer.pointee.deadline = deadline
    timer.pointee.isArmed = true
    var previous: UnsafeMutablePointer<Timer>? = nil
    var cursor = head
    while let current = cursor, current.pointee.deadline <= deadline {
      previous = current
      cursor = current.pointee.next
    }
    timer.pointee.next = cursor
    if let previous { previous.pointee.next = timer } else { head = timer }
    return previous == nil
  }

  /// Disarms `timer`; returns whether it was armed (false: it fired or was never armed).
  public mutating func cancel(_ timer: UnsafeMutablePointer<Timer>) -> Bool {
    guard timer.pointee.isArmed else { return false }
    var previous: UnsafeMutablePointer<Timer>? = nil
    var cursor = head
    while let current = cursor {
      if current == timer {
        if let previous { previous.pointee.next = current.pointee.next } else { head = current.pointee.next }
        current.pointee.next = nil
        current.pointee.isArmed = false
        return true
      }
      previous = current
      cursor = current.pointee.next
    }
    preconditionFailure("an armed timer missing from its queue")
  }

  /// Removes the earliest timer if its deadline is at or before `now`, disarmed, for
  /// the caller to run; nil when none is due.
  public mutating func takeExpired(now: UInt64) -> UnsafeMutablePointer<Timer>? {
    guard let first = head, first.pointee.deadline <= now else { return nil }
    head = first.pointee.next
    first.pointee.next = nil
    first.pointee.isArmed = false
    return first
  }
}
