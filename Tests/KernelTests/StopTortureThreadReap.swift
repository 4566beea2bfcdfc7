/// A leak the stop torture ran into: threads that end on an idle AP are not reclaimed.
///
/// An AP's idle loop reclaims the threads that ended there (`Threads.reapDeadThreads`)
/// only after a `schedule()` of its own, when it finds `needsReschedule` set between
/// two halts. But a thread woken onto a halted AP usually gets the CPU at the wake-up
/// interrupt's exit (`preemptOnInterruptExit`): when that thread ends, the idle thread
/// resumes inside the interrupt's return and halts again, past the reaping. The ended
/// thread's stack (and control block) stays taken until some later wake-up happens to
/// come between the idle loop's checks, which may be never: the torture, 2000 short
/// threads, filled the 1024 guarded stacks ("threads: no stack for stop-torture/1918:
/// the guarded stack region is full") with hundreds of ended threads per AP.
///
/// Passes once the idle loop reaps whatever ended, however it got the CPU back (for
/// instance at the top of every round of `Idle.run`).
enum StopTortureThreadReap {
  /// Threads started one after the other.
  static let threads = 200
  /// Heap growth allowed: a few stacks' worth (a stack is 4 pages, plus its control
  /// block), for the group records and a thread not reclaimed yet.
  static let allowedBytes = 16 * 5 * 4096

  private static let nothing: CallFunction = { _ in }

  static func run() -> TestResult {
    guard let cpu = CPUs.online.first(where: { $0 != .boot }) else { return .skip("one CPU online") }
    // A few first, so that what is allocated once (the stack slots' table) is.
    if let late = runOneByOne(8, on: cpu) { return .fail(late) }
    let before = KernelHeap.bytesInUse
    if let late = runOneByOne(threads, on: cpu) { return .fail(late) }
    Threads.scheduler.sleep(nanoseconds: 20_000_000)  // the last one's end, on its CPU
    let grown = KernelHeap.bytesInUse > before ? KernelHeap.bytesInUse - before : 0
    KTAP.diagnostic(
      "\(threads) threads ended on CPU \(cpu), one after the other: heap use grew by \(grown / 1024) KiB")
    guard grown <= allowedBytes else {
      return .fail("the ended threads of CPU \(cpu) were not reclaimed (\(grown / 1024) KiB of heap kept)")
    }
    return .pass
  }

  /// Starts `count` threads on `cpu`, each after the one before has ended.
  private static func runOneByOne(_ count: Int, on cpu: CPUIndex) -> LogLine? {
    for number in 0..<count {
      let group = ThreadGroup(capacity: 1)
      group.start(ThreadName("reap-check", number), on: cpu, nothing, nil)
      if let late = group.wait(milliseconds: 1000) {
        return "thread \(number) on CPU \(cpu), bound 1 s: \(line: late)"
      }
    }
    return nil
  }
}
