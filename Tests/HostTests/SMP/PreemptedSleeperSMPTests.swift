import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// A known scheduler bug the stop tests ran into (Kernel/Sched, outside the stop
  /// machinery, so reproduced here and not fixed with it).
  ///
  /// A thread preempted between `prepareToSleep()` and `schedule()` stays queued with
  /// its state still sleeping (Linux: on_rq with TASK_UNINTERRUPTIBLE). `wake` then
  /// finds it sleeping and queues it a second time, where Linux's try_to_wake_up()
  /// sees it on the run queue and only marks it running (ttwu_runnable()). The run
  /// queue's list then links the thread to itself, and a stale entry outlives it.
  ///
  /// Any waiter whose own CPU's stopper is woken in that window hits it: a
  /// `stopTwoCPUs` caller in `StopDone.wait`, a `stopMachine` caller queued on the stop
  /// mutex (`Mutex.lock`). The race of StopTwoCPUsSMPTests lost a runnable thread
  /// within a few runs when its callers sat on CPUs that the stops also stopped.
  @Suite("Preempted sleeper woken on fake CPUs")
  struct PreemptedSleeperSMPTests {
    /// On CPU 0 the sleeper prepares to sleep and wakes a stopper, which preempts it at
    /// once; the stopper wakes the sleeper (still queued) and ends. The sleeper runs
    /// again and ends: it must leave CPU 0 for good. With the bug, the stale queue entry
    /// runs the ended thread again ("a dead thread ran again").
    @Test func wakingASleeperPreemptedBeforeItSleptQueuesItOnce() {
      withKnownIssue(
        "Scheduler.wake queues a thread that is still queued (preempted after prepareToSleep) again"
      ) {
        FakeSchedMachine.with(cpus: 1, expectingPanics: true) { machine in
          let scheduler = machine.scheduler
          let sleeperThread = Atomic<UnsafeMutablePointer<KernelThread>?>(nil)
          let stopper = machine.spawn("stopper", 0, on: 0, priority: .stopper) {
            // Acquire pairs with the test's release.
            scheduler.wake(sleeperThread.load(ordering: .acquiring)!)
          }
          let sleeper = machine.spawn("sleeper", on: 0) {
            scheduler.prepareToSleep()
            scheduler.wake(stopper.thread)  // Preempts us at once; it wakes us.
          }
          sleeperThread.store(sleeper.thread, ordering: .releasing)  // Pairs with the stopper's acquire.
          machine.start(sleeper)
          machine.waitForAll([sleeper, stopper], timeout: 5, "(the sleeper and the stopper)")
          // Its end is the last thing the sleeper does; give a stale entry time to run it.
          _ = HostClock.poll(timeout: 0.2) { !machine.panicLines.isEmpty }
          #expect(machine.panicLines.isEmpty, "\(machine.panicLines)")
        }
      }
    }
  }
}
