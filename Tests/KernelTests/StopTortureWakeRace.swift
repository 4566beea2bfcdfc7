import Synchronization

/// The race the stop torture found, made deterministic. A
/// thread marked sleeping (`prepareToSleep`) is preempted by its CPU's stopper before
/// it reaches `schedule()`, and the stopper's function wakes it.
///
/// Preempted while marked sleeping, the thread is put back in its run queue and stays
/// marked sleeping (`pickNext`); `Scheduler.wake` sees "sleeping" and queues it a
/// second time, without looking at `isQueued`. Linux's try_to_wake_up() checks
/// `p->on_rq` for exactly this and only marks the task running (ttwu_runnable()). The
/// thread, the tail of its queue, is appended after itself: its link points to itself,
/// and a copy stays queued after it is picked. When it then ends, `exitCurrent` picks
/// that copy, "switches" to itself and panics "sched: a dead thread ran again"; had
/// another thread been queued behind it, that one would have been cut off the queue
/// and never run again. In the torture the window is `StopDone.wait` (and every other
/// wait) between the unlock that turns interrupts back on and `schedule()`.
///
/// Passes once `wake` leaves a queued thread where it is: `if !thread.pointee.isQueued
/// { enqueue(thread, on: target) }`.
enum StopTortureWakeRace {
  /// The stopper's function: wakes the thread it is given.
  private static let wakeThread: StopFunction = { info in
    Threads.scheduler.wake(info!.assumingMemoryBound(to: KernelThread.self))
    return 0
  }

  /// The thread: marks itself sleeping, queues the wake-up on its own CPU's stopper
  /// (whose wake-up preempts it at the queueing's `preemptEnable`), and ends.
  private static let sleeper: CallFunction = { info in
    let ranAgain = info!.assumingMemoryBound(to: Atomic<Bool>.self)
    let work = UnsafeMutablePointer<StopWork<X86_64Platform>>.allocate(capacity: 1)
    work.initialize(to: StopWork())
    Threads.scheduler.prepareToSleep()
    _ = StopperThreads.stoppers.stopOneCPUNoWait(
      X86_64Platform.currentCPU, wakeThread, UnsafeMutableRawPointer(Threads.scheduler.current), work: work)
    Threads.scheduler.cancelSleep()
    if waitUntil(milliseconds: 5000, { !work.pointee.isBusy }) {
      work.deinitialize(count: 1)
      work.deallocate()
    } else {
      log(
        "stop wake race: the stopper of CPU \(X86_64Platform.currentCPU) did not run the wake-up within 5 s")
    }
    ranAgain.pointee.store(true, ordering: .releasing)  // pairs with the acquire below
  }

  static func run() -> TestResult {
    let online = CPUs.online
    guard let cpu = online.first(where: { $0 != .boot }) else { return .skip("one CPU online") }
    let ranAgain = UnsafeMutablePointer<Atomic<Bool>>.allocate(capacity: 1)
    ranAgain.initialize(to: Atomic<Bool>(false))
    let group = ThreadGroup(capacity: 1)
    group.start(ThreadName("wake-race", cpu.rawValue), on: cpu, sleeper, UnsafeMutableRawPointer(ranAgain))
    if let late = group.wait(milliseconds: 5000) {
      return .fail("the woken sleeper, bound 5 s: \(line: late)")  // ranAgain leaked: it still writes it
    }
    defer { ranAgain.deallocate() }
    guard ranAgain.pointee.load(ordering: .acquiring) else { return .fail("the sleeper never ran again") }
    // The end of a thread queued twice panics just after it announced its end: give it
    // the time to, then show that the CPU still runs threads.
    let counters = CPUCounters()
    guard (try? X86_64Platform.calls.callSingle(on: cpu, countOnThisCPU, counters.info, wait: true)) != nil
    else {
      return .fail("CPU \(cpu) refused a cross-call after the race")
    }
    var ranOn = -1
    do throws(StopError) {
      try StopperThreads.stoppers.stopOneCPU(
        cpu,
        { info in
          info!.assumingMemoryBound(to: Int.self).pointee = X86_64Platform.currentCPU.rawValue
          return 0
        }, &ranOn)
    } catch {
      return .fail("stopOneCPU(\(cpu)) after the race failed")
    }
    return ranOn == cpu.rawValue ? .pass : .fail("stopOneCPU(\(cpu)) after the race ran on CPU \(ranOn)")
  }
}
