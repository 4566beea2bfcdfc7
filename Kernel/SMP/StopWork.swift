import Synchronization

/// What the stop machinery needs from the machine beyond the scheduler's seam.
public protocol StopPlatform: SchedPlatform {
  /// A cheap, fine-grained clock for the stop timeline (the TSC on x86-64): it is read
  /// with interrupts off at each state change, so it must not take a lock.
  static func timestamp() -> UInt64
  /// Nanoseconds in `ticks` of `timestamp()`.
  static func timestampNanoseconds(_ ticks: UInt64) -> UInt64
  /// Whether `cpu` takes part in scheduling: online and not on its way down.
  /// Linux: cpu_active().
  static func isActive(_ cpu: CPUIndex) -> Bool
  /// The active CPUs. Linux: cpu_active_mask.
  static var activeCPUs: CPUSet { get }
  /// Waits, interrupts off, while the byte at `flag` is not 0, giving the CPU (a vCPU's
  /// host core) away if the platform can; `endWaitWithInterruptsOff(on:)` ends the wait
  /// after clearing the byte. Must return within a bound even if nobody ends it (the
  /// caller then looks at the clock: a stall must be reported); may return early. Linux has no such hook: its CPUs spin
  /// in stop_machine_yield(); with more vCPUs than host cores, spinning vCPUs hold the
  /// cores the others need to arrive.
  static func waitWithInterruptsOff(whileNonZero flag: UnsafeRawPointer)
  /// Ends `cpu`'s `waitWithInterruptsOff`, whose flag the caller has just cleared.
  static func endWaitWithInterruptsOff(on cpu: CPUIndex)
}

extension StopPlatform {
  /// A platform that cannot sleep with interrupts off spins.
  public static func waitWithInterruptsOff(whileNonZero flag: UnsafeRawPointer) { relax() }
  /// Nothing to end: the waiter spins.
  public static func endWaitWithInterruptsOff(on cpu: CPUIndex) {}
}

/// A done record: how many works of one request are still to finish, the first
/// non-zero result, and the thread waiting for the last one. Lives on the requester's
/// stack; the lock makes the last signaller's wake-up its final touch of the record,
/// so the requester may return the moment it sees the count at zero.
/// Linux: struct cpu_stop_done (with its completion).
///
/// Several stoppers signal one record at once, so no method is `mutating`: a mutating
/// call through the record's pointer is an access to the whole record that begins
/// before the lock is taken, and two at once are overlapping accesses, which Swift's
/// exclusivity rule forbids and the optimiser may assume never happen. ThreadSanitizer
/// reported them on the host; in the kernel the optimiser kept the waiter in a register
/// across the sleep, the last signal found nobody to wake, and `stop_trace` hung. The
/// state is in atomics instead, read and written relaxed under the lock, which orders
/// them.
public struct StopDone<Platform: SchedPlatform>: ~Copyable {
  private let lock = SpinLock<Platform>("stop done")
  private let remaining: Atomic<Int>
  private let firstFailure = Atomic<Int32>(0)
  private let waiter = Atomic<UnsafeMutablePointer<KernelThread>?>(nil)

  /// A record for `works` works. Linux: cpu_stop_init_done().
  public init(works: Int) { remaining = Atomic(works) }

  /// One work finished (`ran`: its function returned `result`) or was answered without
  /// running; the last wakes the waiter. Any context but NMI.
  /// Linux: cpu_stop_signal_done(), plus the result store of cpu_stopper_thread().
  func signal(ran didRun: Bool, result: Int32, scheduler: Scheduler<Platform>) {
    let state = lock.lock()
    if result != 0 && firstFailure.load(ordering: .relaxed) == 0 {
      firstFailure.store(result, ordering: .relaxed)
    }
    let left = remaining.wrappingSubtract(1, ordering: .relaxed).newValue
    precondition(left >= 0, "stop: a done record signalled more often than it had works")
    if left == 0, let waiter = waiter.load(ordering: .relaxed) { scheduler.wake(waiter) }
    lock.unlock(state)
  }

  /// Sleeps until every work has finished. Thread context. Linux: wait_for_completion().
  /// Unbounded here: the multi-CPU stop bounds each of its states and reports a stall,
  /// and a single stopper runs a function that may not sleep.
  func wait(in scheduler: Scheduler<Platform>) {
    var state = lock.lock()
    while remaining.load(ordering: .relaxed) > 0 {
      waiter.store(scheduler.current, ordering: .relaxed)
      // Marked sleeping before the lock is dropped: the last signal wakes us, and
      // schedule() returns at once if it already did.
      scheduler.prepareToSleep()
      lock.unlock(state)
      scheduler.schedule()
      state = lock.lock()
    }
    lock.unlock(state)
  }

  /// Whether every work has finished, under the lock (so a signaller is not still
  /// inside the record). Linux: completion_done().
  func isComplete() -> Bool {
    let state = lock.lock()
    defer { lock.unlock(state) }
    return remaining.load(ordering: .relaxed) == 0
  }

  /// The first non-zero result, 0 when every function returned 0. Once complete.
  var result: Int32 { firstFailure.load(ordering: .relaxed) }
}

/// What a work runs: a caller's function, or one CPU's part of a multi-CPU stop (a
/// generic function, which a C function pointer cannot be).
enum StopJob {
  case function(StopFunction, UnsafeMutableRawPointer?)
  case multiStop(UnsafeMutableRawPointer)
}

/// One request queued on one CPU's stopper.
/// Linux: struct cpu_stop_work.
public struct StopWork<Platform: SchedPlatform>: ~Copyable {
  var job: StopJob
  var done: UnsafeMutablePointer<StopDone<Platform>>?
  var next: UnsafeMutablePointer<StopWork<Platform>>? = nil
  /// Set while queued or running; cleared by the stopper just before it signals, so a
  /// `stopOneCPUNoWait` caller can tell when its buffer is free again.
  let inUse = Atomic<Bool>(false)

  /// An empty work buffer, for `stopOneCPUNoWait`.
  public init() {
    job = .function(nothingToDo, nil)
    done = nil
  }

  init(job: StopJob, done: UnsafeMutablePointer<StopDone<Platform>>?) {
    self.job = job
    self.done = done
  }

  /// Whether the stopper still holds this buffer (queued, or its function running).
  public var isBusy: Bool {
    // Acquire pairs with the stopper's release when it lets go: what the function did
    // is visible once this reads false.
    inUse.load(ordering: .acquiring)
  }
}

private let nothingToDo: StopFunction = { _ in 0 }

/// One CPU's stopper: its queue, whether it takes work, its thread, and the record
/// of the last multi-CPU stop it took part in.
/// Linux: struct cpu_stopper.
struct CPUStopper<Platform: SchedPlatform>: ~Copyable {
  /// Only under `lock`. First, not `lock` (see CPURunState: ThreadSanitizer).
  var head: UnsafeMutablePointer<StopWork<Platform>>? = nil
  var tail: UnsafeMutablePointer<StopWork<Platform>>? = nil
  /// Guards the queue, `enabled` and `parkRequested`.
  let lock = SpinLock<Platform>("stopper")
  /// Whether new works are accepted. Under `lock`. Linux: stopper->enabled.
  var enabled = false
  /// Set by `park`: once the queue is empty the thread parks. Under `lock`.
  var parkRequested = false
  /// Whether the thread has parked (release by the thread, acquire by `isParked`).
  let parked = Atomic<Bool>(false)
  /// The `migration/N` thread.
  var thread: UnsafeMutablePointer<KernelThread>? = nil
  /// Whether this CPU naps in a multi-CPU stop's PREPARE, so the CPU that ends PREPARE
  /// kicks only the nappers (sequentially consistent: see `Stoppers.waitStep`).
  let napping = Atomic<Bool>(false)
  /// The last multi-CPU stop this CPU acknowledged: its generation and state, for the
  /// stall report (relaxed: a diagnostic).
  let lastAck = Atomic<UInt64>(0)

  init() {}

  /// Appends `work`. Under `lock`.
  mutating func append(_ work: UnsafeMutablePointer<StopWork<Platform>>) {
    work.pointee.next = nil
    if let tail { tail.pointee.next = work } else { head = work }
    tail = work
  }

  /// Takes the first work. Under `lock`.
  mutating func removeFirst() -> UnsafeMutablePointer<StopWork<Platform>>? {
    guard let work = head else { return nil }
    head = work.pointee.next
    if head == nil { tail = nil }
    work.pointee.next = nil
    return work
  }
}
