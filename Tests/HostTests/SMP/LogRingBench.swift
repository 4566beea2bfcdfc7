import Foundation
import LockstepKernel
import Synchronization

/// The owner ID of the calling thread in a `LogRingBench`, set by each test thread.
private let ringOwnerKey: pthread_key_t = {
  var key = pthread_key_t()
  precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
  return key
}()

/// A `LogRing` on host threads: zeroed storage, a byte buffer as the device, and a
/// printer that can be made to stall at its n-th device wait until released.
final class LogRingBench: @unchecked Sendable {
  /// The bench `LogRingDevice` forwards to; one test at a time.
  nonisolated(unsafe) static var current: LogRingBench!

  let slots: Int
  let storage: UnsafeMutableRawPointer
  let timing: LogRingTiming
  let output = Mutex<[UInt8]>([])
  let takeovers = Atomic<Int>(0)
  let skipped = Atomic<Int>(0)
  /// Owner whose `stallAtWait`-th device wait stalls (0: none).
  let stallOwner: UInt16
  let stallAtWait: Int
  private let waitsByStallOwner = Atomic<Int>(0)
  let stalled = DispatchSemaphore(value: 0)
  let resume = DispatchSemaphore(value: 0)

  /// A bench with a ring of `slots` records.
  init(slots: Int, stallOwner: UInt16 = 0, stallAtWait: Int = 0, timing: LogRingTiming) {
    self.slots = slots
    self.stallOwner = stallOwner
    self.stallAtWait = stallAtWait
    self.timing = timing
    let size = LogRing<LogRingDevice>.storageSize(slots: slots)
    storage = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
    storage.initializeMemory(as: UInt8.self, repeating: 0, count: size)
  }

  deinit { storage.deallocate() }

  /// The ring over the bench's storage.
  var ring: LogRing<LogRingDevice> { LogRing(storage: storage, slots: slots) }

  /// Runs `body` on a new thread as owner `id`; the semaphore is signalled when done.
  func spawn(as id: UInt16, _ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
      LogRingBench.setOwner(id)
      body()
      done.signal()
    }
    thread.start()
    return done
  }

  /// Sets the calling thread's owner ID.
  static func setOwner(_ id: UInt16) {
    pthread_setspecific(ringOwnerKey, UnsafeRawPointer(bitPattern: Int(id)))
  }

  /// The calling thread's owner ID (`unknownOwner` if never set).
  static var owner: UInt16 {
    guard let raw = pthread_getspecific(ringOwnerKey) else { return LogCursor.unknownOwner }
    return UInt16(truncatingIfNeeded: Int(bitPattern: raw))
  }

  /// The device wait: the stall owner's chosen wait blocks until `resume` (10 s bound).
  func waitForDevice() {
    guard stallOwner != 0, Self.owner == stallOwner else { return }
    if waitsByStallOwner.wrappingAdd(1, ordering: .relaxed).oldValue == stallAtWait {
      stalled.signal()
      _ = resume.wait(timeout: .now() + 10)
    }
  }

  /// Everything printed, as lines (the text after the last newline, if any, dropped).
  var lines: [String] {
    let text = String(decoding: output.withLock { $0 }, as: UTF8.self)
    return Array(text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init))
  }
}

/// `LogRingPlatform` over `LogRingBench.current`.
enum LogRingDevice: LogRingPlatform {
  static var logOwnerID: UInt16 { LogRingBench.owner }
  static func nanoseconds() -> UInt64 { HostClock.now() }
  static func relax() { sched_yield() }
  static func waitForDevice() { LogRingBench.current.waitForDevice() }
  static func send(_ bytes: UnsafeBufferPointer<UInt8>) {
    LogRingBench.current.output.withLock { $0.append(contentsOf: bytes) }
  }
  /// Small, so that a stall can fall inside a line.
  static var deviceBurst: Int { 4 }
  static var logTiming: LogRingTiming { LogRingBench.current.timing }
  static func count(_ event: LogRingEvent) {
    switch event {
    case .takeover: LogRingBench.current.takeovers.wrappingAdd(1, ordering: .relaxed)
    case .skipped: LogRingBench.current.skipped.wrappingAdd(1, ordering: .relaxed)
    }
  }
}
