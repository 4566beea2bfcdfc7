import Synchronization

/// `bench`: `smp_send_stop`'s figures, printed as `bench <metric> ns <samples...>`.
///
/// A real stop is final, so every figure is a rehearsal (`SMPStop.rehearse`): the same
/// path as `smp_send_stop` (claims, stop vector, NMI on the second attempt, the wait for
/// every acknowledgement), after which the stopped CPUs go back to what they were
/// doing. A stopped CPU waits for the rehearsal's end in `hlt` with interrupts off
/// (woken by an NMI), as a real stop's CPU halts for good, so that it holds no host core
/// the CPUs still to be stopped need (`SendStop.acknowledgeRehearsal`; a first version
/// spun there, and from 4 vCPUs on the figures were the spinners': 4-57 ms). The
/// caller is `main` on CPU 0; a sample is the outcome's own time, claim to the end of
/// the wait.
///
/// - `sendstop_idle`: every other CPU idle in `hlt`.
/// - `sendstop_busy`: every other CPU running a kernel thread that spins with
///   interrupts on (`BusyCPUs`).
/// - `sendstop_wedged`: the last online CPU spins in a cross-call handler (interrupts
///   off), the rest idle: the first attempt times out, the NMI stops it.
/// - `nmi_latency`: one-way, from the NMI's send on CPU 0 to its handler on idle CPU 1
///   (TSC stamps; QEMU's TSCs are shared).
enum SendStopBenchmark {
  typealias Budget = StopBenchmark.Budget

  /// Budgets per figure: a boot's figures take under 10 s of its bound (60 s plus 4 s a
  /// vCPU) however slow the host.
  static let idle = Budget(samples: 200, milliseconds: 2_000)
  static let busy = Budget(samples: 200, milliseconds: 3_000)
  static let wedged = Budget(samples: 20, milliseconds: 1_500)
  static let nmi = Budget(samples: 200, milliseconds: 1_000)
  static let warmUps = 4

  static func run() {
    guard let stop = SMPStop.shared else {
      log("bench: send-stop is not set up; no sendstop figures")
      return
    }
    let others = IPISuite.others
    guard let partner = others.first else { return }
    var last = partner
    for cpu in others { last = cpu }
    let timeoutMicroseconds = stop.settings.timeoutNanoseconds / 1000

    rehearsals("sendstop_idle", idle, others, busy: false)
    let spinners = BusyCPUs(others)
    rehearsals("sendstop_busy", busy, others, busy: true)
    spinners.stop()
    wedgedRehearsals(last, others, timeoutMicroseconds: timeoutMicroseconds)
    nmiLatency(to: partner)

    log(
      "bench-note sendstop_*: rehearsals (smp_send_stop's path up to every acknowledgement, then the CPUs go on); caller main on CPU 0, every other online CPU a target; claim to end of wait"
    )
    log(
      "bench-note sendstop_idle: targets idle in hlt; sendstop_busy: targets spinning in a thread, interrupts on; both take the stop vector (attempt 1 of \(stop.settings.attempts))"
    )
    log(
      "bench-note sendstop_wedged: the last online CPU spins in a call handler, interrupts off, the rest idle in hlt; stop vector, \(timeoutMicroseconds) us timeout, then NMI; total time"
    )
    log(
      "bench-note sendstop_*: a CPU that acknowledged a rehearsal waits in hlt, interrupts off, until it ends (a real stop halts it for good)"
    )
    log(
      "bench-note nmi_latency: one-way, IPI.sendNMI on CPU 0 to the NMI handler's TSC stamp on CPU \(partner.rawValue), target idle in hlt"
    )
  }

  // MARK: Idle and busy

  // A rehearsal's stopped CPUs wait in a quiet wait: its NMI watchdog's ticks and the
  // wake-up NMIs that end it go to `NMI.handle`, so no test handler is installed while
  // rehearsals run. An NMI of a second attempt that lands after its rehearsal ended
  // (rare: a few in a thousand busy rehearsals) is logged as unknown.

  /// Rehearsals with every CPU of `targets` idle or busy: warm-ups, then the budget's
  /// samples. A rehearsal that left a CPU unacknowledged is left out and counted; one
  /// that needed the NMI attempt is kept (that is what the stop would have cost) and
  /// counted.
  private static func rehearsals(_ name: StaticString, _ budget: Budget, _ targets: CPUSet, busy: Bool) {
    let deadline = Clock.nanoseconds() + budget.milliseconds * 1_000_000
    for _ in 0..<warmUps where Clock.nanoseconds() < deadline {
      settle(targets, idle: !busy)
      _ = SMPStop.rehearse()
    }
    var line = BenchLine(name, unit: "ns")
    var taken = 0
    var failed = 0
    var neededNMI = 0
    while taken < budget.samples && Clock.nanoseconds() < deadline {
      settle(targets, idle: !busy)
      taken += 1
      guard let outcome = SMPStop.rehearse() else {
        failed += 1
        break  // a stop is in progress: no more rehearsals
      }
      guard outcome.failed.isEmpty, outcome.running == targets else {
        if failed == 0 { describe(name, outcome) }
        failed += 1
        // Let stragglers take their stop vector or NMI before the next rehearsal.
        napFor(microseconds: 50_000)
        continue
      }
      if outcome.attempts > 1 { neededNMI += 1 }
      line.add(outcome.nanoseconds)
    }
    line.flush()
    StopBenchmark.report(name, budget, taken: taken, failed: failed)
    if neededNMI > 0 {
      log(
        "bench: \(name): \(neededNMI) of \(taken) rehearsals needed the NMI attempt (a CPU missed the first)")
    }
  }

  /// Before a sample: with `idle`, every target has left the last rehearsal's stop
  /// handler (a waiting call to all of them returns only then, since the handler runs
  /// with interrupts off) and gone back to `hlt` (a nap long enough for a vCPU thread
  /// each to get a host core: the caller naps meanwhile). Busy targets only get the nap.
  private static func settle(_ targets: CPUSet, idle: Bool) {
    if idle { X86_64Platform.calls.callOthers({ _ in }, nil, wait: true) }
    napFor(microseconds: 200 + 20 * UInt64(targets.count))
  }

  /// Waits `microseconds` with interrupts on, in `hlt` after the first 20 us.
  private static func napFor(microseconds: UInt64) {
    let end = Clock.nanoseconds() + microseconds * 1000
    _ = waitUntil(milliseconds: microseconds / 1000 + 1) { Clock.nanoseconds() >= end }
  }

  // MARK: One CPU wedged

  /// The wedged CPU spins (set by it); end the spin (set by the caller); the spin has
  /// ended (set by it). Each sample starts from all false.
  private static let wedgeSpinning = Atomic<Bool>(false)
  private static let wedgeRelease = Atomic<Bool>(false)
  private static let wedgeEnded = Atomic<Bool>(false)
  /// The spin's own bound, past any rehearsal's (attempts x timeout) and its end.
  private static let wedgeBoundNanoseconds: UInt64 = 2_000_000_000

  /// A cross-call handler (interrupts off) that spins until told to end, or its bound.
  private static let spinWithInterruptsOff: CallFunction = { _ in
    let start = Clock.nanoseconds()
    // Release pairs with the caller's acquire: the spin has begun.
    wedgeSpinning.store(true, ordering: .releasing)
    while !wedgeRelease.load(ordering: .acquiring) && Clock.nanoseconds() &- start < wedgeBoundNanoseconds {
      CPUInstructions.pause()
    }
    wedgeEnded.store(true, ordering: .releasing)
  }

  /// Rehearsals with CPU `victim` wedged (interrupts off in a call handler) and the rest
  /// of `targets` idle. One warm-up (it warms the NMI path), then the budget's samples.
  /// A sample counts if the NMI went to `victim` and nothing was left unacknowledged;
  /// samples where other CPUs missed the first attempt too are kept and counted.
  private static func wedgedRehearsals(_ victim: CPUIndex, _ targets: CPUSet, timeoutMicroseconds: UInt64) {
    let deadline = Clock.nanoseconds() + wedged.milliseconds * 1_000_000
    _ = wedgedRehearsal(victim, targets)
    var line = BenchLine("sendstop_wedged", unit: "ns")
    var taken = 0
    var failed = 0
    var othersByNMI = 0
    while taken < wedged.samples && Clock.nanoseconds() < deadline {
      taken += 1
      guard let outcome = wedgedRehearsal(victim, targets) else {
        failed += 1
        break
      }
      guard outcome.failed.isEmpty, outcome.sentNMI.contains(victim) else {
        if failed == 0 { describe("sendstop_wedged", outcome) }
        failed += 1
        continue
      }
      if outcome.sentNMI.count > 1 { othersByNMI += 1 }
      line.add(outcome.nanoseconds)
    }
    line.flush()
    StopBenchmark.report("sendstop_wedged", wedged, taken: taken, failed: failed)
    if othersByNMI > 0 {
      log(
        "bench: sendstop_wedged: in \(othersByNMI) of \(taken) rehearsals CPUs besides the wedged one needed the NMI"
      )
    }
  }

  /// Says what a rehearsal left out of a figure did: attempts, CPUs sent an NMI, CPUs
  /// never acknowledged.
  private static func describe(_ name: StaticString, _ outcome: SendStopOutcome) {
    log(
      "bench: \(name): a rehearsal left out: \(outcome.attempts) attempts, \(outcome.running.count) running, \(outcome.sentNMI.count) sent NMI, \(outcome.failed.count) unacknowledged, \(outcome.nanoseconds / 1000) us"
    )
  }

  /// One rehearsal with `victim` wedged; nil (and a line saying why) if the wedge did
  /// not start or end, or no rehearsal could run. The victim is released in every case.
  private static func wedgedRehearsal(_ victim: CPUIndex, _ targets: CPUSet) -> SendStopOutcome? {
    settle(targets, idle: true)
    wedgeSpinning.store(false, ordering: .relaxed)
    wedgeRelease.store(false, ordering: .relaxed)
    wedgeEnded.store(false, ordering: .relaxed)
    do throws(CrossCallError) {
      try X86_64Platform.calls.callSingle(on: victim, spinWithInterruptsOff, nil, wait: false)
    } catch {
      log("bench: sendstop_wedged: the call to CPU \(victim.rawValue) was refused")
      return nil
    }
    // Acquire pairs with the release in the spin.
    guard waitUntil(milliseconds: 1000, { wedgeSpinning.load(ordering: .acquiring) }) else {
      log("bench: sendstop_wedged: CPU \(victim.rawValue) did not start spinning within 1 s")
      wedgeRelease.store(true, ordering: .releasing)
      return nil
    }
    let outcome = SMPStop.rehearse()
    // The rehearsal's NMI returned the victim into its spin: end it.
    wedgeRelease.store(true, ordering: .releasing)
    guard waitUntil(milliseconds: 1000, { wedgeEnded.load(ordering: .acquiring) }) else {
      log("bench: sendstop_wedged: CPU \(victim.rawValue) did not leave its spin within 1 s")
      return nil
    }
    // Its stop vector, pending since the first attempt, fires when the handler returns
    // (SMPStop ignores it after a rehearsal): let it, before the next rehearsal.
    napFor(microseconds: 1000)
    return outcome
  }

  // MARK: NMI latency

  /// The CPU whose NMI handler stamps; -1 for none. The stamp (TSC) and the count of
  /// stamped NMIs.
  private static let nmiTarget = Atomic<Int>(-1)
  private static let nmiStamp = Atomic<UInt64>(0)
  private static let nmiCount = Atomic<Int>(0)

  /// `NMI.testOnlyHandler` while `nmiLatency` runs: stamps the TSC on the target CPU.
  private static let stampNMI: @convention(c) () -> Void = {
    guard PerCPU.currentCPU.rawValue == nmiTarget.load(ordering: .relaxed) else { return }
    nmiStamp.store(CPUInstructions.readTSC(), ordering: .relaxed)
    // Release pairs with the caller's acquire: the stamp is written.
    nmiCount.wrappingAdd(1, ordering: .releasing)
  }

  /// NMIs to idle CPU `cpu`, one-way: send to the handler's stamp. Nothing else sends
  /// NMIs meanwhile (no stop runs), so the test handler may take every one.
  private static func nmiLatency(to cpu: CPUIndex) {
    nmiTarget.store(cpu.rawValue, ordering: .relaxed)
    nmiStamp.store(0, ordering: .relaxed)
    nmiCount.store(0, ordering: .relaxed)
    NMI.testOnlyHandler = stampNMI  // visible to the target before the NMI: the send's fence
    let deadline = Clock.nanoseconds() + nmi.milliseconds * 1_000_000
    var line = BenchLine("nmi_latency", unit: "ns")
    var taken = 0
    var failed = 0
    let total = warmUps + nmi.samples
    while taken < total && Clock.nanoseconds() < deadline {
      napFor(microseconds: 100)  // the target is back in hlt
      taken += 1
      let before = nmiCount.load(ordering: .relaxed)
      let start = CPUInstructions.readTSC()
      IPI.sendNMI(to: cpu)
      guard waitUntil(milliseconds: 100, { nmiCount.load(ordering: .acquiring) != before }) else {
        log("bench: nmi_latency: CPU \(cpu.rawValue) took no NMI within 100 ms; no more samples")
        break
      }
      let stamp = nmiStamp.load(ordering: .relaxed)
      guard taken > warmUps else { continue }
      guard stamp >= start else {
        failed += 1
        continue
      }
      line.add(Clock.ticksToNanoseconds(stamp &- start))
    }
    // A lost NMI that still comes is then logged as an unknown one.
    NMI.testOnlyHandler = nil
    nmiTarget.store(-1, ordering: .relaxed)
    line.flush()
    StopBenchmark.report("nmi_latency", nmi, taken: max(taken - warmUps, 0), failed: failed)
  }
}
