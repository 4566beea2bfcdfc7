import LockstepKernel
import Testing

/// The run queue's order rules: stoppers before normal threads, first come first
/// served within a class, the idle thread never queued.
@Suite("RunQueue")
struct RunQueueTests {
  /// Threads for the tests, freed by `release`.
  private func threads(_ priorities: [ThreadPriority]) -> [UnsafeMutablePointer<KernelThread>] {
    priorities.enumerated().map { index, priority in
      let thread = UnsafeMutablePointer<KernelThread>.allocate(capacity: 1)
      thread.initialize(
        to: KernelThread(
          name: ThreadName("t", index), priority: priority, cpu: CPUIndex(0), function: nil, argument: nil))
      return thread
    }
  }

  private func release(_ threads: [UnsafeMutablePointer<KernelThread>]) {
    for thread in threads {
      thread.deinitialize(count: 1)
      thread.deallocate()
    }
  }

  @Test func stoppersRunBeforeNormalThreadsAndEachClassIsFIFO() {
    let all = threads([.normal, .stopper, .normal, .stopper, .normal])
    defer { release(all) }
    var queue = RunQueue()
    for thread in all { queue.enqueue(thread) }
    #expect(queue.count == 5 && queue.highestPriority == .stopper)
    var order: [Int] = []
    while let next = queue.dequeueNext() { order.append(all.firstIndex(of: next)!) }
    #expect(order == [1, 3, 0, 2, 4])
    #expect(queue.highestPriority == nil && queue.count == 0)
  }

  @Test func aThreadRequeuedGoesToTheTailOfItsClass() {
    let all = threads([.normal, .normal, .normal])
    defer { release(all) }
    var queue = RunQueue()
    for thread in all { queue.enqueue(thread) }
    let first = queue.dequeueNext()!
    queue.enqueue(first)  // preempted or yielded: behind the others
    var order: [Int] = []
    while let next = queue.dequeueNext() { order.append(all.firstIndex(of: next)!) }
    #expect(order == [1, 2, 0])
  }

  @Test func aListRemovesFromTheMiddleAndKeepsItsTail() {
    let all = threads([.normal, .normal, .normal])
    defer { release(all) }
    var list = ThreadList()
    for thread in all { list.append(thread) }
    let removed = list.remove(all[2])
    let missing = list.remove(all[2])
    #expect(removed && !missing && list.count == 2)
    list.append(all[2])
    var order: [Int] = []
    while let next = list.removeFirst() { order.append(all.firstIndex(of: next)!) }
    #expect(order == [0, 1, 2] && list.isEmpty)
  }
}
