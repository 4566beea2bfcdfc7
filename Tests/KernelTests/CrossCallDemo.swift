/// What `make run` shows of cross-CPU calls: every online CPU calls every other one
/// (Linux: smp_call_function(), waiting), and each CPU's count of calls received is
/// printed and checked. Runs when the command line asks for no tests or benchmark.
enum CrossCallDemo {
  /// Posted to each AP: call all others, then report done.
  private static let callEveryone: CallFunction = { info in
    let pair = info!.assumingMemoryBound(to: UnsafeMutableRawPointer.self)
    X86_64Platform.calls.callOthers(countOnThisCPU, pair[0], wait: true)
    countOnThisCPU(pair[1])
  }

  /// Returns whether every CPU received exactly one call from each other CPU.
  static func run() -> Bool {
    let online = CPUs.online
    let received = CPUCounters()
    let finished = CPUCounters()
    let pair = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: 2)
    defer { pair.deallocate() }
    pair[0] = received.info
    pair[1] = finished.info
    for cpu in online where cpu != X86_64Platform.currentCPU {
      Idle.post(callEveryone, UnsafeMutableRawPointer(pair), to: cpu)
    }
    callEveryone(UnsafeMutableRawPointer(pair))
    guard finished.wait(forTotal: online.count, milliseconds: 5000) else {
      log("ipi: only \(finished.total) of \(online.count) CPUs finished calling within 5 s")
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
