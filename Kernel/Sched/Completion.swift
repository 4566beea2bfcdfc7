/// Something one thread waits for and another announces, once or for everyone.
/// Linux: `struct completion`.
///
/// `done` counts completions not yet consumed; `completeAll` makes it unbounded, so
/// every present and future waiter passes. Waiters sleep in the scheduler; a
/// completion from any context but NMI wakes them. A class: waiters on several CPUs
/// share it, and its mutable state is guarded by its lock (allocate it in thread
/// context).
public final class Completion<Platform: SchedPlatform> {
  private let lock = SpinLock<Platform>("completion")
  private var done: UInt = 0
  private var waiters = ThreadList(.wait)

  /// A completion nobody has announced yet. Linux: init_completion().
  public init() {}

  /// Sleeps until the completion is announced, then consumes one announcement.
  /// Unbounded on purpose, as Linux's: what it waits for may legitimately take any
  /// time (a thread's whole run); a caller that knows a bound uses
  /// `wait(in:timeoutNanoseconds:)` and reports the timeout.
  /// Thread context, with the scheduler running on this CPU.
  /// Linux: wait_for_completion().
  public func wait(in scheduler: Scheduler<Platform>) {
    while true {
      let state = lock.lock()
      if done > 0 {
        if done != UInt.max { done -= 1 }
        lock.unlock(state)
        return
      }
      // Marked sleeping before the lock is dropped: a complete() from now on wakes us,
      // and schedule() returns at once if it already did.
      waiters.append(scheduler.current)
      scheduler.prepareToSleep()
      lock.unlock(state)
      scheduler.schedule()
    }
  }

  /// As `wait(in:)`, but gives up after `timeoutNanoseconds`: returns true when the
  /// completion came (and was consumed), false on timeout. Thread context.
  /// Linux: wait_for_completion_timeout().
  public func wait(in scheduler: Scheduler<Platform>, timeoutNanoseconds: UInt64) -> Bool {
    let deadline = Platform.nanoseconds() &+ timeoutNanoseconds
    let me = scheduler.current
    while true {
      let state = lock.lock()
      if done > 0 {
        if done != UInt.max { done -= 1 }
        lock.unlock(state)
        return true
      }
      if !waiters.contains(me) { waiters.append(me) }
      lock.unlock(state)
      // A complete() that took us off the list before we were marked sleeping found us
      // running and could not wake us: the condition sees it, and we look again.
      let woken = scheduler.sleep(until: deadline, unless: { !isWaiting(me) })
      if !woken && withdraw(me) { return false }
    }
  }

  private func isWaiting(_ thread: UnsafeMutablePointer<KernelThread>) -> Bool {
    lock.withLock { waiters.contains(thread) }
  }

  /// Takes a timed-out waiter off the list; false if a complete() took it first (then
  /// the completion is its to consume).
  private func withdraw(_ thread: UnsafeMutablePointer<KernelThread>) -> Bool {
    lock.withLock { waiters.remove(thread) }
  }

  /// Announces one completion: wakes the longest waiter, or lets the next `wait` pass.
  /// Any context but NMI.
  /// Linux: complete().
  public func complete(in scheduler: Scheduler<Platform>) {
    let state = lock.lock()
    if done != UInt.max { done += 1 }
    let woken = waiters.removeFirst()
    lock.unlock(state)
    if let woken { scheduler.wake(woken) }
  }

  /// Announces the completion for good: wakes every waiter, and every later `wait`
  /// passes. Any context but NMI.
  /// Linux: complete_all().
  public func completeAll(in scheduler: Scheduler<Platform>) {
    let state = lock.lock()
    done = UInt.max
    var woken = ThreadList(.wait)
    while let waiter = waiters.removeFirst() { woken.append(waiter) }
    lock.unlock(state)
    while let waiter = woken.removeFirst() { scheduler.wake(waiter) }
  }
}
