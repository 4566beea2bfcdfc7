import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// The real `Scheduler` on fake CPUs (`FakeSchedMachine`): run-queue order and
  /// classes, preemption by a woken stopper, and the sleep/wake protocol racing.
  @Suite("Scheduler on fake CPUs")
  struct SchedulerSMPTests {
    /// Flags shared by the threads of one test.
    final class Flags: @unchecked Sendable {
      /// The stopper ran.
      let stopperRan = Atomic<Bool>(false)
      /// The spinner saw what the test wants of it (the stopper ran while it spun).
      let spinnerSawStopper = Atomic<Bool>(false)
      /// The spinner is in its loop (and has interrupts or preemption off, if it should).
      let spinning = Atomic<Bool>(false)
      /// The waker has woken the stopper.
      let woken = Atomic<Bool>(false)

      /// The waker's side: waits for the spinner to be in its loop, then wakes `stopper`.
      func wake(_ stopper: FakeKernelThread, in scheduler: Scheduler<FakeSchedPlatform>) {
        FakeSchedPlatform.spin { spinning.load(ordering: .acquiring) }  // Pairs with the spinner's release.
        scheduler.wake(stopper.thread)
        woken.store(true, ordering: .releasing)  // Pairs with the spinner's acquire.
      }
    }

    /// On CPU 0, `L` wakes normal threads A and B, then a stopper S, then C, and ends.
    /// S runs at once (it outranks L); L goes back to the tail of the normal class, so
    /// the order is S, A, B, L, C: FIFO among normal threads, stoppers first.
    @Test func stoppersFirstThenNormalThreadsInOrderOfWaking() {
      FakeSchedMachine.with(cpus: 2) { machine in
        let events = EventLog()
        let scheduler = machine.scheduler
        let a = machine.spawn("A", on: 0) { events.record("A") }
        let b = machine.spawn("B", on: 0) { events.record("B") }
        let c = machine.spawn("C", on: 0) { events.record("C") }
        let s = machine.spawn("S", on: 0, priority: .stopper) { events.record("S") }
        let l = machine.run("L", on: 0) {
          scheduler.wake(a.thread)
          scheduler.wake(b.thread)
          scheduler.wake(s.thread)
          events.record("L")
          scheduler.wake(c.thread)
        }
        machine.waitForAll([l, a, b, c, s])
        #expect(events.all == ["S", "A", "B", "L", "C"])
      }
    }

    /// A normal thread spins on CPU 0 with interrupts on; a thread on CPU 1 wakes a
    /// stopper bound to CPU 0. The reschedule interrupt preempts the spinner, and the
    /// stopper runs on CPU 0 while the spinner is still in its loop.
    @Test func aStopperWokenFromAnotherCPUPreemptsASpinningThread() {
      FakeSchedMachine.with(cpus: 2) { machine in
        let flags = Flags()
        let ranOn = Atomic<Int>(-1)
        let stopper = machine.spawn("stopper", 0, on: 0, priority: .stopper) {
          ranOn.store(FakeSchedPlatform.currentCPU.rawValue, ordering: .relaxed)
          flags.stopperRan.store(true, ordering: .releasing)  // Pairs with the spinner's acquire.
        }
        let spinner = machine.run("spinner", on: 0) {
          flags.spinning.store(true, ordering: .releasing)  // Pairs with the waker's acquire.
          let saw = FakeSchedPlatform.spin { flags.stopperRan.load(ordering: .acquiring) }
          flags.spinnerSawStopper.store(saw, ordering: .relaxed)
        }
        let waker = machine.run("waker", on: 1) { flags.wake(stopper, in: machine.scheduler) }
        machine.waitForAll([spinner, waker, stopper])
        let preempted = flags.spinnerSawStopper.load(ordering: .relaxed)
        #expect(preempted, "the stopper did not preempt the spinner")
        #expect(ranOn.load(ordering: .relaxed) == 0)
      }
    }

    /// The same with the spinner's interrupts off, then with preemption disabled: the
    /// stopper does not run until the spinner turns them back on, and then at once (at
    /// `sti`, or at `preemptEnable()`).
    @Test(arguments: [false, true])
    func noPreemptionWhileTheSpinnerForbidsIt(byPreemptDisable: Bool) {
      FakeSchedMachine.with(cpus: 2) { machine in
        let flags = Flags()
        let scheduler = machine.scheduler
        let stopper = machine.spawn("stopper", 0, on: 0, priority: .stopper) {
          flags.stopperRan.store(true, ordering: .releasing)  // Pairs with the spinner's acquire.
        }
        let spinner = machine.run("spinner", on: 0) {
          if byPreemptDisable { scheduler.preemptDisable() } else { FakeSchedPlatform.disableInterrupts() }
          flags.spinning.store(true, ordering: .releasing)  // Pairs with the waker's acquire.
          FakeSchedPlatform.spin { flags.woken.load(ordering: .acquiring) }  // Pairs with the waker's release.
          FakeSchedPlatform.spin(for: 0.05)
          let ranEarly = flags.stopperRan.load(ordering: .acquiring)
          if byPreemptDisable { scheduler.preemptEnable() } else { FakeSchedPlatform.enableInterrupts() }
          let ranAtEnable = flags.stopperRan.load(ordering: .acquiring)
          flags.spinnerSawStopper.store(!ranEarly && ranAtEnable, ordering: .relaxed)
        }
        let waker = machine.run("waker", on: 1) { flags.wake(stopper, in: scheduler) }
        machine.waitForAll([spinner, waker, stopper])
        let ranAtEnable = flags.spinnerSawStopper.load(ordering: .relaxed)
        #expect(ranAtEnable, "the stopper ran early, or not at enable")
      }
    }

    /// Counters one thread posts and another sleeps on, with the scheduler's own
    /// protocol: mark sleeping, re-check, then schedule.
    final class Rendezvous: @unchecked Sendable {
      /// The last round the pinger posted.
      let ping = Atomic<Int>(0)
      /// The last round the ponger answered.
      let pong = Atomic<Int>(0)
      /// The scheduler both sleep in.
      let scheduler: Scheduler<FakeSchedPlatform>
      /// A rendezvous in `scheduler`.
      init(_ scheduler: Scheduler<FakeSchedPlatform>) { self.scheduler = scheduler }

      /// Sleeps until `counter` reaches `round`.
      func sleep(until counter: borrowing Atomic<Int>, _ round: Int) {
        while true {
          scheduler.prepareToSleep()
          // Acquire pairs with the release in post(). Marked sleeping first: a post
          // after this load finds us sleeping and wakes us.
          if counter.load(ordering: .acquiring) >= round {
            scheduler.cancelSleep()
            return
          }
          scheduler.schedule()
        }
      }

      /// Sets `counter` to `round` and wakes `thread`.
      func post(_ counter: borrowing Atomic<Int>, _ round: Int, to thread: UnsafeMutablePointer<KernelThread>)
      {
        counter.store(round, ordering: .releasing)  // Pairs with the acquire in sleep(until:_:).
        scheduler.wake(thread)
      }
    }

    /// Two threads on two CPUs take turns 5 000 times, each sleeping with
    /// `prepareToSleep`/`schedule` until the other posts and wakes it: every post races
    /// the other side's check. A lost wake-up leaves both asleep and fails the test at
    /// its time bound.
    @Test func prepareToSleepAndWakeRacingLoseNoWakeUp() {
      let rounds = 5_000
      FakeSchedMachine.with(cpus: 2) { machine in
        let meeting = Rendezvous(machine.scheduler)
        let pinger = Atomic<UnsafeMutablePointer<KernelThread>?>(nil)
        let ponger = machine.spawn("ponger", on: 1) {
          let partner = pinger.load(ordering: .acquiring)!  // Pairs with the test's release.
          for round in 1...rounds {
            meeting.sleep(until: meeting.ping, round)
            meeting.post(meeting.pong, round, to: partner)
          }
        }
        let pingerThread = machine.spawn("pinger", on: 0) {
          for round in 1...rounds {
            meeting.post(meeting.ping, round, to: ponger.thread)
            meeting.sleep(until: meeting.pong, round)
          }
        }
        pinger.store(pingerThread.thread, ordering: .releasing)  // Pairs with the ponger's acquire.
        machine.start(ponger)
        machine.start(pingerThread)
        machine.waitForAll(
          [pingerThread, ponger], timeout: 30,
          "(ping \(meeting.ping.load(ordering: .relaxed)), pong \(meeting.pong.load(ordering: .relaxed)))")
        #expect(meeting.pong.load(ordering: .relaxed) == rounds)
      }
    }

    /// Known bug: a thread preempted between `prepareToSleep()` and its re-check is
    /// taken off its CPU as if it slept, and a wake-up that came before `prepareToSleep`
    /// was lost. A preempted thread now stays queued whatever its state, as in Linux
    /// (`__schedule(SM_PREEMPT)`); this was a known issue until then.
    /// Here the waiter wakes a stopper on its own CPU after `prepareToSleep`: the
    /// stopper preempts it at once, and the waiter must run again afterwards.
    /// A wake-up that comes while the thread still runs leaves it queued; if it then
    /// cancels that sleep and prepares a new one, its next `schedule()` must take it off
    /// the queue and really sleep, not return at once (which would let a wait loop join
    /// its wait list twice). Here the thread wakes itself to make the stale wake-up.
    @Test func aStaleWakeUpDoesNotEndALaterSleep() {
      FakeSchedMachine.with(cpus: 2) { machine in
        let scheduler = machine.scheduler
        let flags = StaleWakeFlags()
        let sleeper = machine.spawn("sleeper", on: 0) {
          scheduler.prepareToSleep()
          scheduler.wake(scheduler.current)  // the stale wake-up: we still run
          scheduler.cancelSleep()
          scheduler.prepareToSleep()
          scheduler.schedule()  // must sleep until the waker below
          // Acquire pairs with the waker's release: it really woke us.
          flags.sleptUntilWoken.store(flags.woken.load(ordering: .acquiring), ordering: .relaxed)
        }
        machine.start(sleeper)
        let waker = machine.run("waker", on: 1) {
          FakeSchedPlatform.spin(for: 0.05)
          flags.woken.store(true, ordering: .releasing)
          scheduler.wake(sleeper.thread)
        }
        machine.waitForAll([sleeper, waker], timeout: 5, "(the sleeper never woke)")
        let slept = flags.sleptUntilWoken.load(ordering: .relaxed)
        #expect(slept, "schedule() returned before the wake-up")
      }
    }

    /// A thread preempted by a stopper between preparing to sleep and sleeping stays
    /// queued; if the stopper (or anyone) wakes it meanwhile, as the last signaller of a
    /// stop's done record does, it must not be queued a second time. Queued twice, the
    /// run queue's list is corrupt: the CPU loses the thread or the ones after it. Found
    /// by the `stop` suite's stop_two_cpus race, where a pair's caller slept forever.
    @Test func aThreadWokenWhilePreemptedBeforeSleepingIsQueuedOnce() {
      FakeSchedMachine.with(cpus: 1) { machine in
        let scheduler = machine.scheduler
        let box = ThreadBox()
        let stopper = machine.spawn("stopper", 0, on: 0, priority: .stopper) {
          scheduler.wake(box.thread.load()!)  // the last signal
        }
        let waiter = machine.run("waiter", on: 0) {
          box.thread.store(scheduler.current)
          scheduler.prepareToSleep()
          scheduler.wake(stopper.thread)  // preempts us while marked sleeping: we stay queued
          scheduler.schedule()  // the stopper woke us meanwhile: returns
        }
        let after = machine.run("after", on: 0) {}
        machine.waitForAll([waiter, stopper, after], timeout: 2, "(a thread woken while queued was lost)")
      }
    }

    @Test func aThreadPreemptedAfterPrepareToSleepRunsAgain() {
      FakeSchedMachine.with(cpus: 1) { machine in
        let scheduler = machine.scheduler
        let stopper = machine.spawn("stopper", 0, on: 0, priority: .stopper) {}
        let waiter = machine.run("waiter", on: 0) {
          scheduler.prepareToSleep()
          scheduler.wake(stopper.thread)  // Preempts us (interrupts and preemption on).
          scheduler.cancelSleep()  // The re-check found the condition true.
        }
        machine.waitForAll([waiter, stopper], timeout: 1, "(the preempted waiter never ran again)")
      }
    }
  }
}

/// The waiter of `aThreadWokenWhilePreemptedBeforeSleepingIsQueuedOnce`, for its stopper.
final class ThreadBox: @unchecked Sendable {
  let thread = AtomicOptionalThread()
}

/// An atomic optional thread pointer.
final class AtomicOptionalThread: @unchecked Sendable {
  private let raw = Atomic<UInt>(0)
  /// Release: pairs with the acquire in `load`.
  func store(_ thread: UnsafeMutablePointer<KernelThread>) {
    raw.store(UInt(bitPattern: thread), ordering: .releasing)
  }
  /// Acquire: pairs with the release in `store`.
  func load() -> UnsafeMutablePointer<KernelThread>? {
    UnsafeMutablePointer(bitPattern: raw.load(ordering: .acquiring))
  }
}

/// The flags of `aStaleWakeUpDoesNotEndALaterSleep`.
final class StaleWakeFlags: @unchecked Sendable {
  let sleptUntilWoken = Atomic<Bool>(false)
  let woken = Atomic<Bool>(false)
}
