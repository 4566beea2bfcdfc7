import Synchronization

/// What an idle CPU does: sleep in `hlt` until an interrupt, then look for work.
///
/// Until the cross-call queue exists, work reaches an idle CPU through a one-slot
/// mailbox (`PerCPU.request`) and the wake vector; it is used by in-kernel tests and
/// benchmarks only.
enum RemoteWork: UInt8 {
  case none = 0
  /// Bounce a cache line with the boot CPU (see `CacheLinePingPong`).
  case pingPong = 1
  /// Count one acknowledgement: proves the CPU woke and ran posted work.
  case acknowledge = 2
  /// Print a burst of log lines, then acknowledge (see `ConsoleSuite`).
  case logBurst = 3
}

enum Idle {
  /// Idles the running CPU forever. The mailbox is checked with interrupts off and the
  /// CPU halts with `sti; hlt`, so a wake-up IPI sent after the check still wakes it.
  static func run() -> Never {
    let block = PerCPU.current
    while true {
      CPUInstructions.disableInterrupts()
      // Acquire pairs with the releasing exchange in post(): the work's inputs are visible.
      let work = block.pointee.request.exchange(RemoteWork.none.rawValue, ordering: .acquiring)
      if let work = RemoteWork(rawValue: work), work != .none {
        perform(work)
        continue
      }
      CPUInstructions.enableInterruptsAndHalt()
    }
  }

  /// Asks idle CPU `cpu` to do `work` and wakes it.
  static func post(_ work: RemoteWork, to cpu: Int) {
    // Release pairs with the acquire in run(): inputs written before this are visible.
    PerCPU.block(cpu).pointee.request.store(work.rawValue, ordering: .releasing)
    LocalAPIC.send(.fixed(Vector.wake, to: CPUs.table!.apicID(of: CPUIndex(cpu))))
  }

  /// Parks the running CPU for good: interrupts off, `hlt` forever.
  static func parkForever() -> Never {
    while true {
      CPUInstructions.disableInterrupts()
      CPUInstructions.halt()
    }
  }

  private static func perform(_ work: RemoteWork) {
    switch work {
    case .none: break
    case .pingPong: CacheLinePingPong.respond()
    case .logBurst:
      ConsoleSuite.burst()
      acknowledge()
    case .acknowledge:
      acknowledge()
    }
  }

  private static func acknowledge() {
    // Release pairs with the waiter's acquire: it sees the work done.
    PerCPU.current.pointee.acknowledgements.wrappingAdd(1, ordering: .releasing)
  }
}
