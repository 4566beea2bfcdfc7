import Glibc

// Host synchronisation for the fake SMP machine.
//
// Plain pthread primitives on purpose: ThreadSanitizer intercepts pthread_mutex and
// pthread_cond, so every hand-off through a `Monitor` is a happens-before edge it sees.
// Dispatch semaphores and `Synchronization.Mutex` synchronise inside uninstrumented
// libraries on Linux and would produce false race reports.

/// A pthread mutex with one condition variable on the monotonic clock.
final class Monitor: @unchecked Sendable {
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

  /// A fresh, unlocked monitor.
  init() {
    pthread_mutex_init(mutex, nil)
    var attributes = pthread_condattr_t()
    pthread_condattr_init(&attributes)
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
    pthread_cond_init(condition, &attributes)
    pthread_condattr_destroy(&attributes)
  }

  deinit {
    pthread_cond_destroy(condition)
    pthread_mutex_destroy(mutex)
    condition.deallocate()
    mutex.deallocate()
  }

  /// Runs `body` with the mutex held.
  func withLock<T>(_ body: () throws -> T) rethrows -> T {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    return try body()
  }

  /// Sleeps until signalled or until `deadline` (`HostClock` nanoseconds). Call with the
  /// mutex held (inside `withLock`); wakes may be spurious.
  func wait(until deadline: UInt64) {
    var time = timespec(
      tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
    _ = pthread_cond_timedwait(condition, mutex, &time)
  }

  /// Wakes every waiter. Call with the mutex held.
  func broadcast() {
    pthread_cond_broadcast(condition)
  }

  /// Waits until `predicate` (evaluated with the mutex held) is true or `deadline`
  /// passes. Returns the predicate's final value.
  func wait(until deadline: UInt64, for predicate: () -> Bool) -> Bool {
    withLock {
      while !predicate() {
        guard HostClock.now() < deadline else { return false }
        wait(until: deadline)
      }
      return true
    }
  }
}

/// The host's monotonic clock, in nanoseconds.
enum HostClock {
  /// Now, from CLOCK_MONOTONIC.
  static func now() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
  }

  /// The instant `seconds` from now.
  static func deadline(after seconds: Double) -> UInt64 {
    now() + UInt64(seconds * 1e9)
  }

  /// Milliseconds elapsed since `start`.
  static func milliseconds(since start: UInt64) -> Double {
    Double(now() &- start) / 1e6
  }

  /// Polls `predicate` every 100 µs (from a thread that is not a fake CPU) until it
  /// holds or `seconds` pass. Returns its final value.
  static func poll(timeout seconds: Double, _ predicate: () -> Bool) -> Bool {
    let deadline = deadline(after: seconds)
    while !predicate() {
      guard now() < deadline else { return false }
      usleep(100)
    }
    return true
  }
}

/// A value computed on one thread and read on another after a `Monitor` hand-off.
final class ResultBox<Value>: @unchecked Sendable {
  /// The value, once set.
  var value: Value?

  /// An empty box.
  init() {}
}
