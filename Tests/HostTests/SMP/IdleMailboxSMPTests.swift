import Foundation
import LockstepKernel
import Synchronization
import Testing

extension SMPTests {
  /// `IdleMailbox` with several posting threads and one owner taking work.
  @Suite("Idle mailbox")
  struct IdleMailboxSMPTests {
    /// The mailbox: its word and the argument beside it, as in a per-CPU block.
    final class Box: @unchecked Sendable {
      let word = Atomic<UInt>(0)
      nonisolated(unsafe) var argument: UInt = 0
    }

    /// Four posters each post 2 000 jobs (work = poster + 2, argument = a number unique
    /// to the job, `poster * 1 000 000 + job`); the owner takes them all. Every job must
    /// run once, with its own argument, none lost.
    @Test func concurrentPostersNeitherLoseNorMixJobs() throws {
      let box = Box()
      let posters = 4
      let jobs = 2_000
      let taken = Mutex<[(UInt, UInt)]>([])
      let stop = Atomic<Bool>(false)
      let ownerDone = DispatchSemaphore(value: 0)
      Thread {
        while !stop.load(ordering: .relaxed) {
          if let job = IdleMailbox.take(from: box.word, loadingArgument: { box.argument }) {
            taken.withLock { $0.append(job) }
          } else {
            sched_yield()
          }
        }
        while let job = IdleMailbox.take(from: box.word, loadingArgument: { box.argument }) {
          taken.withLock { $0.append(job) }
        }
        ownerDone.signal()
      }.start()
      let done = (0..<posters).map { poster in
        let finished = DispatchSemaphore(value: 0)
        Thread {
          for job in 0..<jobs {
            let argument = UInt(poster * 1_000_000 + job)
            while !IdleMailbox.tryPost(
              UInt(poster + 2), to: box.word, storingArgument: { box.argument = argument })
            {
              sched_yield()
            }
          }
          finished.signal()
        }.start()
        return finished
      }
      for finished in done { try #require(finished.wait(timeout: .now() + 30) == .success, "a poster hung") }
      stop.store(true, ordering: .relaxed)
      try #require(ownerDone.wait(timeout: .now() + 5) == .success)
      let jobsTaken = taken.withLock { $0 }
      #expect(jobsTaken.count == posters * jobs, "jobs lost or run twice")
      for (work, argument) in jobsTaken {
        #expect(Int(argument) / 1_000_000 == Int(work) - 2, "job of poster \(work - 2) ran with \(argument)")
      }
      let arguments = Set(jobsTaken.map(\.1))
      #expect(arguments.count == posters * jobs, "an argument ran twice or never")
    }
  }
}
