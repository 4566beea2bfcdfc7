import Synchronization

/// What an idle CPU does, as its idle thread: give the CPU to any thread woken here,
/// reclaim threads that ended here, run work posted for thread context, and otherwise
/// sleep in `hlt` until an interrupt (whose cross-calls run in the handler).
///
/// Posted work is one function per CPU at a time, run from the idle loop with
/// interrupts on: the stand-in for kernel threads that tests and benchmarks still use
/// to make a CPU issue calls, spin, or print.
enum Idle {
  /// Idles the running CPU forever. Wake-ups and posted work are checked with
  /// interrupts off and the CPU halts with `sti; hlt`, so a reschedule IPI sent after
  /// the check still wakes it.
  static func run() -> Never {
    let block = PerCPU.current
    while true {
      CPUInstructions.disableInterrupts()
      if Threads.scheduler.needsReschedule {
        Threads.scheduler.schedule()
        Threads.reapDeadThreads()
        continue
      }
      // The argument is read before the mailbox is freed (see IdleMailbox).
      let taken = IdleMailbox.take(from: block.pointee.threadWork) { block.pointee.threadWorkInfo }
      if let (bits, argument) = taken {
        let function = unsafeBitCast(bits, to: CallFunction.self)
        let info = UnsafeMutableRawPointer(bitPattern: argument)
        CPUInstructions.enableInterrupts()
        function(info)
        continue
      }
      if pollForWork(block) { continue }
      halt(block)
    }
  }

  /// The largest polling window of every CPU's idle loop, in nanoseconds; 0 = never
  /// poll (`idle_poll_us=`). Off by default: measured under TCG on this project's
  /// 2-core machines, polling made calls to idle CPUs slower, not faster (see
  /// docs/benchmarks.md); Linux's guest default is 200 us. Benchmarks change it to
  /// compare. Written by the boot CPU at boot.
  nonisolated(unsafe) static var pollMaximumNanoseconds: UInt64 = 0

  /// Polls, interrupts on, for the CPU's current window (HaltPolling): a call IPI is
  /// served at once, a woken thread is switched to at once, and a vCPU that does not
  /// halt costs its host no wake-up. Returns whether anything arrived. Entered and left
  /// with interrupts off.
  private static func pollForWork(_ block: UnsafeMutablePointer<PerCPU>) -> Bool {
    block.pointee.haltPolling.maximum = pollMaximumNanoseconds
    let window = block.pointee.haltPolling.window
    guard window > 0 else { return false }
    let interruptsBefore = block.pointee.interruptsTaken.load(ordering: .relaxed)
    let start = Clock.nanoseconds()
    CPUInstructions.enableInterrupts()
    while Clock.nanoseconds() &- start < window
      && block.pointee.interruptsTaken.load(ordering: .relaxed) == interruptsBefore
      && block.pointee.threadWork.load(ordering: .relaxed) == 0
    {
      CPUInstructions.pause()
    }
    CPUInstructions.disableInterrupts()
    block.pointee.idlePollNanoseconds.wrappingAdd(Clock.nanoseconds() &- start, ordering: .relaxed)
    return block.pointee.interruptsTaken.load(ordering: .relaxed) != interruptsBefore
      || block.pointee.threadWork.load(ordering: .relaxed) != 0
  }

  /// Halts until an interrupt, then lets the polling window learn from how long that
  /// took. Entered with interrupts off (`sti; hlt`: a wake-up checked for before is
  /// not lost); left with them on.
  private static func halt(_ block: UnsafeMutablePointer<PerCPU>) {
    let start = Clock.nanoseconds()
    CPUInstructions.enableInterruptsAndHalt()
    let halted = Clock.nanoseconds() &- start
    block.pointee.idleHaltNanoseconds.wrappingAdd(halted, ordering: .relaxed)
    block.pointee.haltPolling.halted(for: halted)
  }

  /// Asks CPU `cpu` to run `function(info)` from its idle loop, and wakes it. Waits up
  /// to 100 ms for earlier work to be taken; of concurrent posters to one CPU, each
  /// either claims the mailbox or keeps waiting, so no job is lost or given another's
  /// argument. Returns false, having logged why, if the mailbox stayed busy. Thread
  /// context (it may spin for 100 ms).
  @discardableResult
  static func post(_ function: CallFunction, _ info: UnsafeMutableRawPointer?, to cpu: CPUIndex) -> Bool {
    let block = PerCPU.block(cpu)
    let work = unsafeBitCast(function, to: UInt.self)
    let start = Clock.nanoseconds()
    while !IdleMailbox.tryPost(
      work, to: block.pointee.threadWork,
      storingArgument: {
        block.pointee.threadWorkInfo = UInt(bitPattern: info)
      })
    {
      let waited = Clock.nanoseconds() &- start
      if waited > 100_000_000 {
        let me = PerCPU.currentCPU
        log(
          "idle: CPU \(me) found CPU \(cpu)'s work mailbox busy for \(Int(waited / 1_000_000)) ms; not posting"
        )
        return false
      }
      CPUInstructions.pause()
    }
    X86_64Platform.sendReschedule(to: cpu)
    return true
  }

  /// Parks the running CPU for good: interrupts off, `hlt` forever.
  static func parkForever() -> Never {
    while true {
      CPUInstructions.disableInterrupts()
      CPUInstructions.halt()
    }
  }
}
