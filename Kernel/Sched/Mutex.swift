import Synchronization

/// A sleeping lock: one thread holds it, the others sleep in the scheduler until it is
/// handed to them, first come first served.
/// Linux: `struct mutex`.
///
/// Unlocking hands the mutex straight to the longest waiter (its owner is set before it
/// wakes), so a thread that keeps re-locking cannot starve the others.
/// Misuse is reported: unlocking by a thread that does not hold it is logged once per
/// mutex, locking again by the owner (a guaranteed deadlock) panics, and a thread that
/// ends holding a mutex is logged by `Scheduler.exitCurrent`.
///
/// Context: thread context only, with the scheduler running on this CPU, interrupts and
/// preemption enabled: `lock` may sleep. Never from interrupt or NMI context. A class:
/// threads on several CPUs share it, and its state is guarded by its own spinlock
/// (allocate it in thread context).
public final class Mutex<Platform: SchedPlatform> {
  private let guardLock = SpinLock<Platform>("mutex")
  /// The owner's address, 0 when free. Written under `guardLock`; read relaxed by `owner`.
  private let holder = Atomic<UInt>(0)
  /// Threads sleeping in `lock(in:)`, oldest first. Guarded by `guardLock`.
  private var waiters = ThreadList(.wait)
  /// Set by the first unlock from a thread that was not the owner (reported once).
  private let reportedForeignUnlock = Atomic<Bool>(false)

  /// A free mutex. Linux: mutex_init().
  public init() {}

  /// The thread holding the mutex, nil when free. Relaxed: a hint for checks and
  /// reports (it may change as soon as it is read, unless the caller is the owner).
  /// Any context.
  public var owner: UnsafeMutablePointer<KernelThread>? {
    UnsafeMutablePointer(bitPattern: holder.load(ordering: .relaxed))
  }

  /// Takes the mutex, sleeping while another thread holds it; when it is handed over,
  /// the caller owns it. Panics if the caller holds it already. Unbounded, as Linux's:
  /// the wait lasts as long as the holders' sections, which the holders bound.
  /// Thread context; may sleep.
  /// Linux: mutex_lock().
  public func lock(in scheduler: Scheduler<Platform>) {
    let me = scheduler.current
    let state = guardLock.lock()
    switch owner {
    case nil:
      holder.store(address(of: me), ordering: .relaxed)  // Under `guardLock`, which orders it.
      guardLock.unlock(state)
    case me:
      guardLock.unlock(state)
      Platform.panic("mutex: \(me.pointee.name) locks a mutex it holds already (deadlock)")
    default:
      // Queued and marked sleeping before the lock is dropped: the hand-off in unlock()
      // from now on wakes us, and schedule() returns at once if it already did.
      waiters.append(me)
      scheduler.prepareToSleep()
      guardLock.unlock(state)
      sleepUntilHandedOver(me, in: scheduler)
    }
    me.pointee.mutexesHeld += 1
  }

  /// Sleeps until `unlock` has made `me` the owner. `me` is in `waiters` and marked
  /// sleeping. A wake-up from elsewhere (not the hand-off) only sends it back to sleep.
  private func sleepUntilHandedOver(
    _ me: UnsafeMutablePointer<KernelThread>, in scheduler: Scheduler<Platform>
  ) {
    while true {
      scheduler.schedule()
      let state = guardLock.lock()
      if owner == me {
        guardLock.unlock(state)
        return
      }
      scheduler.prepareToSleep()  // Still in `waiters`; as in lock(), before the drop.
      guardLock.unlock(state)
    }
  }

  /// Takes the mutex if it is free; never sleeps. Returns whether the caller now owns
  /// it (false when it is held, by the caller too). Thread context.
  /// Linux: mutex_trylock().
  public func tryLock(in scheduler: Scheduler<Platform>) -> Bool {
    let me = scheduler.current
    let taken = guardLock.withLock { () -> Bool in
      guard owner == nil else { return false }
      holder.store(address(of: me), ordering: .relaxed)  // Under `guardLock`, which orders it.
      return true
    }
    if taken { me.pointee.mutexesHeld += 1 }
    return taken
  }

  /// Releases the mutex: the longest waiter becomes the owner and is woken, or the mutex
  /// becomes free. From a thread that is not the owner, logs (once per mutex) and
  /// changes nothing. Thread context; does not sleep, but may switch to the woken
  /// thread if it outranks the caller.
  /// Linux: mutex_unlock().
  public func unlock(in scheduler: Scheduler<Platform>) {
    let me = scheduler.current
    let state = guardLock.lock()
    let held = owner
    guard held == me else {
      guardLock.unlock(state)
      reportForeignUnlock(by: me, heldBy: held)
      return
    }
    me.pointee.mutexesHeld -= 1
    let next = waiters.removeFirst()
    // The new owner is set before it is woken (and under `guardLock`, which its re-check in
    // sleepUntilHandedOver() takes): it cannot wake, find the mutex still ours and sleep
    // again with nobody left to wake it.
    holder.store(next.map { address(of: $0) } ?? 0, ordering: .relaxed)
    guardLock.unlock(state)
    if let next { scheduler.wake(next) }
  }

  private func reportForeignUnlock(
    by me: UnsafeMutablePointer<KernelThread>, heldBy held: UnsafeMutablePointer<KernelThread>?
  ) {
    guard !reportedForeignUnlock.exchange(true, ordering: .relaxed) else { return }
    if let held {
      Platform.log("mutex: \(me.pointee.name) unlocks a mutex held by \(held.pointee.name)")
    } else {
      Platform.log("mutex: \(me.pointee.name) unlocks a mutex nobody holds")
    }
  }

  private func address(of thread: UnsafeMutablePointer<KernelThread>) -> UInt {
    UInt(bitPattern: thread)
  }
}
