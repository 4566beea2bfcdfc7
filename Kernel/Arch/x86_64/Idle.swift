import Synchronization

/// What an idle CPU does, as its idle thread: give the CPU to any thread woken here,
/// reclaim threads that ended here, poll a while if the polling window says a wake-up
/// is likely soon, and otherwise sleep in `hlt` until an interrupt (whose cross-calls
/// run in the handler).
enum Idle {
  /// Idles the running CPU forever. Wake-ups are checked with interrupts off and the
  /// CPU halts with `sti; hlt`, so a reschedule IPI sent after the check still wakes it.
  static func run() -> Never {
    let block = PerCPU.current
    while true {
      CPUInstructions.disableInterrupts()
      if Hotplug.isReadyToDie(block) { Hotplug.dieHere(block) }
      // Every round, not only after the loop's own schedule(): a thread woken here
      // while this CPU halted gets it at the interrupt's exit, and when it ends, the
      // idle thread resumes inside that interrupt's return.
      Threads.reapDeadThreads()
      if Threads.scheduler.needsReschedule {
        Threads.scheduler.schedule()
        continue
      }
      if pollForWork(block) { continue }
      halt(block)
    }
  }

  /// The largest polling window of every CPU's idle loop, in nanoseconds; 0 = never
  /// poll (`idle_poll_us=`). Off by default, as Linux loads its haltpoll governor only
  /// when the host says the vCPUs have dedicated cores: on an oversubscribed host a
  /// polling vCPU holds the core the vCPU it waits for needs (measured here with the
  /// host busy: calls to idle CPUs went from 4-11 us to 50-260 us). With the host
  /// otherwise idle, 200 us of polling brought them from 18-44 us to 5 us
  /// (docs/benchmarks.md). Benchmarks change it to compare. Written at boot.
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
    {
      CPUInstructions.pause()
    }
    CPUInstructions.disableInterrupts()
    block.pointee.idlePollNanoseconds.wrappingAdd(Clock.nanoseconds() &- start, ordering: .relaxed)
    return block.pointee.interruptsTaken.load(ordering: .relaxed) != interruptsBefore
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

  /// Parks the running CPU for good: interrupts off, `hlt` forever.
  static func parkForever() -> Never {
    while true {
      CPUInstructions.disableInterrupts()
      CPUInstructions.halt()
    }
  }
}
