/// What `make run` shows of cross-CPU calls: every online CPU calls every other one
/// (Linux: smp_call_function(), waiting), and each CPU's count of calls received is
/// printed and checked. Runs when the command line asks for no tests or benchmark.
enum CrossCallDemo {
  /// Each AP's thread (`demo-call/N`), and the boot CPU itself: call all others.
  private static let callEveryone: CallFunction = { received in
    X86_64Platform.calls.callOthers(countOnThisCPU, received, wait: true)
  }

  /// Returns whether every CPU received exactly one call from each other CPU.
  static func run() -> Bool {
    let online = CPUs.online
    let received = CPUCounters()
    let group = ThreadGroup(capacity: online.count)
    for cpu in online where cpu != X86_64Platform.currentCPU {
      group.start(ThreadName("demo-call", cpu.rawValue), on: cpu, callEveryone, received.info)
    }
    callEveryone(received.info)
    if let late = group.wait(milliseconds: 5000) {
      _ = Unmanaged.passRetained(received)  // late threads still count into it
      log("ipi: the other CPUs' calling threads, bound 5 s: \(line: late)")
      return false
    }
    log("ipi: each of \(online.count) CPUs called every other CPU (smp_call_function, waiting):")
    var allRight = true
    for cpu in online {
      let count = received.value(cpu)
      let right = count == online.count - 1
      allRight = allRight && right
      if right {
        log("ipi:   CPU \(cpu.rawValue) ran \(count) calls from other CPUs")
      } else {
        log("ipi:   CPU \(cpu.rawValue) ran \(count) calls from other CPUs - expected \(online.count - 1)")
      }
    }
    log("ipi: \(received.total) calls in all, \(allRight ? "as expected" : "WRONG")")
    return allRight
  }
}
