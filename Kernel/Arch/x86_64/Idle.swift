import Synchronization

/// What an idle CPU does: sleep in `hlt` until an interrupt, run the cross-calls it
/// brings (in the interrupt handler), and run work posted for thread context.
///
/// Thread-context work is one function per CPU at a time, run from the idle loop with
/// interrupts on: what a kernel thread would run if Lockstep had a scheduler. Tests and
/// benchmarks use it to make a CPU issue calls, spin, or print.
enum Idle {
  /// Idles the running CPU forever. Posted work is checked with interrupts off and the
  /// CPU halts with `sti; hlt`, so a reschedule IPI sent after the check still wakes it.
  static func run() -> Never {
    let block = PerCPU.current
    while true {
      CPUInstructions.disableInterrupts()
      // Acquire pairs with the release in post(): the work's argument is visible.
      let bits = block.pointee.threadWork.exchange(0, ordering: .acquiring)
      if bits != 0 {
        let function = unsafeBitCast(bits, to: CallFunction.self)
        let info = UnsafeMutableRawPointer(bitPattern: block.pointee.threadWorkInfo)
        CPUInstructions.enableInterrupts()
        function(info)
        continue
      }
      CPUInstructions.enableInterruptsAndHalt()
    }
  }

  /// Asks CPU `cpu` to run `function(info)` from its idle loop, and wakes it. Returns
  /// false if the CPU still had earlier work pending after 100 ms.
  @discardableResult
  static func post(_ function: CallFunction, _ info: UnsafeMutableRawPointer?, to cpu: Int) -> Bool {
    let block = PerCPU.block(cpu)
    let start = Clock.nanoseconds()
    while block.pointee.threadWork.load(ordering: .relaxed) != 0 {
      if Clock.nanoseconds() &- start > 100_000_000 {
        log("idle: CPU \(cpu) still has work pending after 100 ms; not posting more")
        return false
      }
      CPUInstructions.pause()
    }
    block.pointee.threadWorkInfo = UInt(bitPattern: info)
    // Release pairs with the acquire in run(): the argument is written first.
    block.pointee.threadWork.store(unsafeBitCast(function, to: UInt.self), ordering: .releasing)
    SMP.sendReschedule(to: CPUIndex(cpu))
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
