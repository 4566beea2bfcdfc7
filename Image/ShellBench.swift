/// The shell's `bench`: a few hundred round trips of each mechanism, from the shell's
/// CPU with the other CPUs idle in `hlt`, as median and p99 beside the bare IPI round
/// trip they stand on. A second or two under TCG; `make bench` is the full measurement,
/// over vCPU counts and boots, with busy targets and the cache-line floor too.
enum ShellBench {
  static let samples = 200
  static let broadcastSamples = 50
  static let stopSamples = 20

  static func run() {
    let me = X86_64Platform.currentCPU
    let online = CPUs.online
    if online.count > 1 {
      log("bench: from CPU \(me), the other \(online.count - 1) online CPU(s) idle in hlt; round trips in us")
    } else {
      log("bench: CPU \(me) alone; round trips in us")
    }
    if let partner = online.first(where: { $0 != me }) {
      IPIFloor.arm()
      report("ipi round trip to CPU \(partner) (the floor)", samples) { IPIFloor.roundTrip(to: partner) }
      IPIFloor.disarm()
      report("smp_call_function_single to CPU \(partner), waiting", samples) {
        timed { () throws(CrossCallError) in
          try X86_64Platform.calls.callSingle(on: partner, { _ in }, nil, wait: true)
        }
      }
      report("smp_call_function to the other \(online.count - 1) CPUs, waiting", broadcastSamples) {
        timed { () throws(CrossCallError) in X86_64Platform.calls.callOthers({ _ in }, nil, wait: true) }
      }
    } else {
      log("bench: one CPU online: no IPI or cross-call to measure")
    }
    report("stop_machine on \(online.count) CPUs", stopSamples) {
      timed { () throws(StopError) in try StopperThreads.stoppers.stopMachine({ _ in 0 }) }
    }
  }

  /// Prints the median and p99 of `count` runs of `sample`, in microseconds; a sample
  /// that failed (nil) is counted and left out.
  private static func report(_ name: LogLine, _ count: Int, _ sample: () -> UInt64?) {
    var values: [UInt64] = []
    values.reserveCapacity(count)
    for _ in 0..<count {
      if let value = sample() { values.append(value) }
    }
    let summary = Statistics.summary(values)
    var line: LogLine = "bench: "
    name.withBytes { line.append(bytes: $0) }
    line.append(": median ")
    line.append(line: ShellCommands.micros(summary.median))
    line.append(", p99 ")
    line.append(line: ShellCommands.micros(summary.p99))
    line.append(" (")
    line.append(decimal: values.count)
    line.append(" samples")
    if values.count < count {
      line.append(", ")
      line.append(decimal: count - values.count)
      line.append(" failed")
    }
    line.append(")")
    log(line)
  }

  /// The nanoseconds `body` took, or nil if it threw.
  private static func timed<E: Error>(_ body: () throws(E) -> Void) -> UInt64? {
    let start = CPUInstructions.readTSC()
    do throws(E) {
      try body()
    } catch {
      return nil
    }
    return Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start)
  }
}

extension LogLine {
  /// Appends another line's text.
  fileprivate mutating func append(line other: LogLine) {
    other.withBytes { append(bytes: $0) }
  }
}
