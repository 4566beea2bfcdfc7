import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// The sleeping `Mutex` across fake CPUs: mutual exclusion, `tryLock`, the FIFO
  /// hand-off, and the misuse reports.
  @Suite("Mutex on fake CPUs")
  struct MutexSMPTests {
    /// The mutex under test (not `Synchronization.Mutex`).
    typealias TestMutex = LockstepKernel.Mutex<FakeSchedPlatform>

    /// A plain counter: only the mutex keeps the increments apart (ThreadSanitizer, in
    /// `make host-test-tsan`, reports any access the mutex does not order).
    final class Counter: @unchecked Sendable {
      /// The count; touched only with the mutex held, or after every worker ended.
      var value = 0
    }

    /// Six threads on three CPUs add 1 to a plain counter 1 500 times each under one
    /// mutex, every 16th time giving the CPU up while holding it (so threads of the same
    /// CPU contend and sleep too). The counter must come out exactly 9 000.
    @Test func incrementsUnderTheMutexAreNeverLost() {
      let (threads, increments) = (6, 1_500)
      FakeSchedMachine.with(cpus: 3) { machine in
        let mutex = TestMutex()
        let counter = Counter()
        let scheduler = machine.scheduler
        let workers = (0..<threads).map { index in
          machine.run("adder", index, on: index % 3) {
            for step in 1...increments {
              mutex.lock(in: scheduler)
              counter.value += 1
              if step % 16 == 0 { scheduler.schedule() }  // Yield while holding.
              mutex.unlock(in: scheduler)
            }
          }
        }
        machine.waitForAll(workers, timeout: 30, "(the mutex is \(mutex.owner == nil ? "free" : "held"))")
        // The workers' ends are ordered before this read by `waitForAll`.
        #expect(counter.value == threads * increments)
        let switches = (0..<3).reduce(0) { $0 + scheduler.switchCount(on: CPUIndex($1)) }
        #expect(switches > 100, "too little contention to test anything (\(switches) switches)")
        #expect(mutex.owner == nil)
        #expect(workers.allSatisfy { $0.thread.pointee.mutexesHeld == 0 })
        #expect(machine.log.isEmpty, "unexpected reports: \(machine.log)")
      }
    }

    /// `tryLock` fails while another thread (on another CPU) holds the mutex, and while
    /// the caller holds it, and succeeds once it is free; `owner` follows.
    @Test func tryLockFailsWhileHeldAndSucceedsAfter() {
      FakeSchedMachine.with(cpus: 2) { machine in
        let mutex = TestMutex()
        let scheduler = machine.scheduler
        let step = Atomic<Int>(0)
        let results = EventLog()
        let holder = machine.run("holder", on: 0) {
          mutex.lock(in: scheduler)
          results.record("owner is holder: \(mutex.owner == scheduler.current)")
          results.record("holder's tryLock: \(mutex.tryLock(in: scheduler))")
          step.store(1, ordering: .releasing)  // Pairs with the acquire in `other`.
          FakeSchedPlatform.spin { step.load(ordering: .acquiring) == 2 }  // Pairs with `other`'s release.
          mutex.unlock(in: scheduler)
          step.store(3, ordering: .releasing)  // Pairs with the acquire in `other`.
        }
        let other = machine.run("other", on: 1) {
          FakeSchedPlatform.spin { step.load(ordering: .acquiring) == 1 }
          results.record("tryLock while held: \(mutex.tryLock(in: scheduler))")
          step.store(2, ordering: .releasing)  // Pairs with the holder's acquire.
          FakeSchedPlatform.spin { step.load(ordering: .acquiring) == 3 }
          results.record("tryLock when free: \(mutex.tryLock(in: scheduler))")
          results.record("owner is other: \(mutex.owner == scheduler.current)")
          mutex.unlock(in: scheduler)
        }
        machine.waitForAll([holder, other])
        #expect(
          results.all == [
            "owner is holder: true", "holder's tryLock: false", "tryLock while held: false",
            "tryLock when free: true", "owner is other: true",
          ])
        #expect(mutex.owner == nil)
      }
    }

    /// While A holds the mutex, B, C and D (on three CPUs) queue for it in that order;
    /// A unlocks and at once locks again. The mutex goes to B, C, D, then A: handed
    /// over in arrival order, and A cannot barge in ahead of the sleepers.
    @Test func unlockHandsTheMutexToWaitersInArrivalOrder() {
      FakeSchedMachine.with(cpus: 3) { machine in
        let mutex = TestMutex()
        let scheduler = machine.scheduler
        let order = EventLog()
        let sleepers = [("B", 1), ("C", 2), ("D", 1)].map { name, cpu in
          machine.spawn("sleeper", cpu, on: cpu) {
            mutex.lock(in: scheduler)
            order.record(name)
            mutex.unlock(in: scheduler)
          }
        }
        let a = machine.run("A", on: 0) {
          mutex.lock(in: scheduler)
          for sleeper in sleepers {
            scheduler.wake(sleeper.thread)
            // Asleep in lock() before the next one comes, so the arrival order is known.
            FakeSchedPlatform.spin { sleeper.thread.pointee.state == .sleeping }
          }
          mutex.unlock(in: scheduler)
          mutex.lock(in: scheduler)
          order.record("A")
          mutex.unlock(in: scheduler)
        }
        machine.waitForAll([a] + sleepers)
        #expect(order.all == ["B", "C", "D", "A"])
      }
    }

    /// A thread that unlocks a mutex it does not hold is reported once (and changes
    /// nothing); a thread that ends holding one is reported by `exitCurrent`.
    @Test func foreignUnlockAndEndingWhileHoldingAreReported() {
      FakeSchedMachine.with(cpus: 2) { machine in
        let mutex = TestMutex()
        let scheduler = machine.scheduler
        let holder = machine.run("holder", on: 0) { mutex.lock(in: scheduler) }
        guard machine.waitForAll([holder]) else { return }
        let intruder = machine.run("intruder", on: 1) {
          mutex.unlock(in: scheduler)
          mutex.unlock(in: scheduler)
        }
        machine.waitForAll([intruder])
        #expect(mutex.owner == holder.thread)
        #expect(
          machine.log.filter { $0.contains("unlocks a mutex") } == [
            "mutex: intruder unlocks a mutex held by holder"
          ])
        #expect(
          machine.log.filter { $0.contains("ends holding") } == ["sched: holder ends holding 1 mutex(es)"])
      }
    }

    /// The owner locking again is a certain deadlock: `lock` panics, naming the thread.
    @Test func theOwnerLockingAgainPanics() {
      FakeSchedMachine.with(cpus: 1, expectingPanics: true) { machine in
        let mutex = TestMutex()
        let scheduler = machine.scheduler
        machine.run("twice", on: 0) {
          mutex.lock(in: scheduler)
          mutex.lock(in: scheduler)
        }
        let panicked = HostClock.poll(timeout: 5) { !machine.panicLines.isEmpty }
        #expect(panicked)
        #expect(machine.panicLines.first?.contains("twice locks a mutex it holds already") == true)
      }
    }
  }
}
