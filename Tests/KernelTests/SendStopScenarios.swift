import Synchronization

/// The `sendstop` scenarios that run after boot (SendStopSuite.swift lists them all).
/// Each sets the machine up, makes the stop from the CPU the scenario names, and ends
/// the machine through `SendStopSuite.finish`; it returns only for a failure before
/// the stop. Every wait here is bounded.
enum SendStopScenarios {
  struct Entry {
    let name: StaticString
    let run: () -> TestResult
  }

  /// The scenarios by name; the `up_*` ones are in SendStopBringUp.swift.
  static var runtime: [Entry] {
    [
      Entry(name: "responsive", run: responsive),
      Entry(name: "busy", run: busy),
      Entry(name: "irqs_off", run: interruptsOff),
      Entry(name: "nmi_stuck", run: stuckInNMI),
      Entry(name: "late_ack", run: lateAcknowledgement),
      Entry(name: "two_callers", run: twoCallers),
      Entry(name: "crash_during_crash", run: crashDuringCrash),
      Entry(name: "printer_midline", run: printerMidLine),
      Entry(name: "heap_lock", run: heapLock),
      Entry(name: "panic_ap", run: panicOnAP),
      Entry(name: "wait_forever", run: waitForever),
    ] + SendStopBringUp.hotplugEntries
  }

  /// The CPU a scenario picks on: the last one online.
  static var victim: CPUIndex { CPUs.online.reversed().first! }

  // MARK: Shared signals (static storage: the NMI and stop paths read them)

  /// Set by a CPU once it is where the scenario wants it (wedged, stuck, holding).
  static let arrived = Atomic<Int>(0)
  /// Lets a held CPU go, or starts the callers.
  static let go = Atomic<Bool>(false)

  /// Spins until `arrived` reaches `count`, at most `milliseconds`.
  static func waitForArrivals(_ count: Int, milliseconds: UInt64 = 2000) -> Bool {
    let start = Clock.nanoseconds()
    // Acquire pairs with the release of each arrival.
    while arrived.load(ordering: .acquiring) < count {
      if Clock.nanoseconds() &- start > milliseconds * 1_000_000 { return false }
      CPUInstructions.pause()
    }
    return true
  }

  /// How long a wedged or stuck CPU holds out (`sendstop_hold_ms=`, default 20 s: far
  /// beyond any scenario's stop, which must not need it to end).
  nonisolated(unsafe) static var holdNanoseconds: UInt64 = 20_000_000_000

  /// Counts the running CPU in, then spins with interrupts as they are until `go` or
  /// `holdNanoseconds`.
  static let spinUntilGo: CallFunction = { _ in
    arrived.wrappingAdd(1, ordering: .releasing)
    let start = Clock.nanoseconds()
    while !go.load(ordering: .acquiring) && Clock.nanoseconds() &- start < holdNanoseconds {
      CPUInstructions.pause()
    }
  }

  // MARK: Scenarios

  /// Every other CPU idle: the stop vector stops each in the first attempt, no NMI.
  static func responsive() -> TestResult {
    let others: StopMechanism? = .vector
    SendStopSuite.stopCheckAndFinish(
      SendStopSuite.Expectation(onlyThoseNMI: true, attempts: 1, others: others))
  }

  /// Every other CPU runs a thread that spins with interrupts on: the same as idle.
  static func busy() -> TestResult {
    let others = CPUs.online.count - 1
    for cpu in CPUs.online where cpu != .boot {
      Threads.start(
        Threads.create(ThreadName("sendstop-busy", cpu.rawValue), on: cpu, function: spinUntilGo, argument: nil))
    }
    guard waitForArrivals(others) else { return .fail("the busy threads did not all start within 2 s") }
    let vector: StopMechanism? = .vector
    SendStopSuite.stopCheckAndFinish(
      SendStopSuite.Expectation(onlyThoseNMI: true, attempts: 1, others: vector))
  }

  /// One CPU spins with interrupts off (a cross-call handler): the vector's attempt
  /// times out on it and the NMI stops it.
  static func interruptsOff() -> TestResult {
    let wedged = victim
    do throws(CrossCallError) {
      try X86_64Platform.calls.callSingle(on: wedged, spinUntilGo, wait: false)
    } catch { return .fail("could not wedge CPU \(wedged)") }
    guard waitForArrivals(1) else { return .fail("CPU \(wedged) did not start spinning within 2 s") }
    SendStopSuite.stopCheckAndFinish(
      SendStopSuite.Expectation(nmi: CPUSet([wedged]), attempts: 2, cpu: wedged, itsMechanism: .nmi))
  }

  /// One CPU spins inside its own NMI handler: NMIs are blocked there, so no attempt
  /// reaches it. Each attempt is bounded, the failure names exactly that CPU, and the
  /// caller goes on.
  static func stuckInNMI() -> TestResult {
    let stuck = victim
    NMI.testOnlyHandler = stayInNMI
    IPI.sendNMI(to: stuck)
    guard waitForArrivals(1) else { return .fail("CPU \(stuck) did not enter its NMI handler within 2 s") }
    let attempts = SMPStop.shared!.settings.attempts
    SendStopSuite.stopCheckAndFinish(
      SendStopSuite.Expectation(failed: CPUSet([stuck]), nmi: CPUSet([stuck]), attempts: attempts))
  }

  private static let stayInNMI: @convention(c) () -> Void = { spinUntilGo(nil) }

  /// `stop_retries=1 stop_wait=forever`: one CPU spins with interrupts off for
  /// `sendstop_hold_ms`; the only attempt waits for it however long that is, saying
  /// every second whom it waits for, and the CPU is stopped by the vector once it
  /// enables interrupts again.
  static func waitForever() -> TestResult {
    let settings = SMPStop.shared!.settings
    guard settings.attempts == 1 && settings.lastAttemptWaitsForever else {
      return .fail("wait_forever needs stop_retries=1 stop_wait=forever")
    }
    let wedged = victim
    do throws(CrossCallError) {
      try X86_64Platform.calls.callSingle(on: wedged, spinUntilGo, wait: false)
    } catch { return .fail("could not wedge CPU \(wedged)") }
    guard waitForArrivals(1) else { return .fail("CPU \(wedged) did not start spinning within 2 s") }
    let vector: StopMechanism? = .vector
    SendStopSuite.stopCheckAndFinish(
      SendStopSuite.Expectation(onlyThoseNMI: true, attempts: 1, others: vector))
  }

  /// One CPU takes the stop vector but works in its stop path until the first attempt
  /// has timed out and the NMI has been sent, and 1 ms more: the NMI finds the
  /// CPU already on its way and leaves it be, and the caller returns only after the
  /// acknowledgement, which says `vector`.
  static func lateAcknowledgement() -> TestResult {
    let slow = victim
    SMPStop.testOnlySlowStop = (slow, 1_000_000)
    let outcome = SMPStop.stopOtherCPUs()
    let finishedFirst = SMPStop.testOnlySlowStopFinished.load(ordering: .relaxed)
    let result = SendStopSuite.check(
      outcome, SendStopSuite.Expectation(nmi: CPUSet([slow]), attempts: 2, cpu: slow, itsMechanism: .vector))
    guard case .pass = result else { SendStopSuite.finish(result) }
    SendStopSuite.finish(finishedFirst ? .pass : .fail("the stop returned before CPU \(slow) finished its work"))
  }

  /// CPUs 0 and 1 call `smp_send_stop` at once: exactly one proceeds; it finds the
  /// other stopped, acknowledged as the caller that lost.
  static func twoCallers() -> TestResult {
    do throws(CrossCallError) {
      try X86_64Platform.calls.callSingle(on: CPUIndex(1), callerOnCPU1, wait: false)
    } catch { return .fail("could not start the caller on CPU 1") }
    guard waitForArrivals(1) else { return .fail("CPU 1 did not get ready within 2 s") }
    CPUInstructions.disableInterrupts()
    go.store(true, ordering: .releasing)
    endTwoCallers()
  }

  private static let callerOnCPU1: CallFunction = { _ in
    arrived.wrappingAdd(1, ordering: .releasing)
    let start = Clock.nanoseconds()
    while !go.load(ordering: .acquiring) && Clock.nanoseconds() &- start < 2_000_000_000 { CPUInstructions.pause() }
    endTwoCallers()
  }

  /// Both callers' way on: the one that proceeds checks and ends the machine.
  private static func endTwoCallers() -> Never {
    let me = PerCPU.currentCPU
    let other = me == .boot ? CPUIndex(1) : CPUIndex.boot
    let outcome = SMPStop.stopOtherCPUs()
    KTAP.diagnostic("CPU \(me) proceeded; CPU \(other) lost the race")
    SendStopSuite.finish(
      SendStopSuite.check(
        outcome, SendStopSuite.Expectation(cpu: other, itsMechanism: .lostTheRace)))
  }

  /// The last CPU panics; CPU 0 panics too once the crash stop is under way (with
  /// interrupts off, so that only its own panic can stop it). CPU 0 must be stopped
  /// without a report of its own; the first report lists it. Ends in the panic, which
  /// the harness checks.
  static func crashDuringCrash() -> TestResult {
    do throws(CrossCallError) {
      try X86_64Platform.calls.callSingle(on: victim, firstCrash, wait: false)
    } catch { return .fail("could not reach CPU \(victim)") }
    // Interrupts off before the first crash may begin (it waits for `go`): the stop
    // vector must not reach this CPU before its own panic does.
    CPUInstructions.disableInterrupts()
    go.store(true, ordering: .releasing)
    let start = Clock.nanoseconds()
    while SMPStop.shared?.isInProgress != true {
      if Clock.nanoseconds() &- start > 5_000_000_000 {
        CPUInstructions.enableInterrupts()
        return .fail("no crash stop began within 5 s of the first crash")
      }
      CPUInstructions.pause()
    }
    Panic.halt("sendstop: second crash on CPU 0, during the crash stop (must not be reported)")
  }

  private static let firstCrash: CallFunction = { _ in
    spinUntilGo(nil)
    Panic.halt("sendstop: first crash")
  }

  /// The last CPU becomes the printer and stalls in the middle of a line (a UART that
  /// stops taking bytes), interrupts on; the stop catches it there. The stopping
  /// CPU's lines must still come out whole: the console takes printing over from the
  /// stopped CPU.
  static func printerMidLine() -> TestResult {
    let printer = victim
    Console.testOnlyStallTakeoverCount.store(Console.takeoverCount.load(ordering: .relaxed), ordering: .relaxed)
    Console.testOnlyStallUntil.store(20_000_000_000, ordering: .relaxed)
    Threads.start(
      Threads.create(ThreadName("sendstop-printer", printer.rawValue), on: printer, function: printLongLine, argument: nil))
    let start = Clock.nanoseconds()
    while Console.testOnlyStallState.load(ordering: .relaxed) != 1 {
      if Clock.nanoseconds() &- start > 2_000_000_000 { return .fail("no printer stalled within 2 s") }
      CPUInstructions.pause()
    }
    // Not a word until the stop: a line written now would wait for the stalled
    // printer and take printing over before the stop could catch it.
    let outcome = SMPStop.stopOtherCPUs()
    KTAP.diagnostic("CPU \(printer) was stalled mid-line holding the printer role when the stop came")
    SendStopSuite.finish(SendStopSuite.check(outcome, SendStopSuite.Expectation()))
  }

  private static let printLongLine: CallFunction = { _ in
    log(
      "sendstop: this line is printed by the CPU that will be stopped in the middle of it, holding the printer role"
    )
  }

  /// The last CPU holds the heap lock (interrupts off) when the stop comes: the NMI
  /// stops it there, and neither the stop nor the report that follows allocates.
  static func heapLock() -> TestResult {
    let holder = victim
    let expectation = SendStopSuite.Expectation(nmi: CPUSet([holder]), cpu: holder, itsMechanism: .nmi)
    do throws(CrossCallError) {
      try X86_64Platform.calls.callSingle(on: holder, holdHeapLock, wait: false)
    } catch { return .fail("could not reach CPU \(holder)") }
    guard waitForArrivals(1) else { return .fail("CPU \(holder) did not take the heap lock within 2 s") }
    KTAP.diagnostic("CPU \(holder) holds the heap lock")
    SendStopSuite.stopCheckAndFinish(expectation)
  }

  private static let holdHeapLock: CallFunction = { _ in
    KernelHeap.testOnlyHoldingLock { spinUntilGo(nil) }
  }

  /// The last CPU panics while CPU 0 runs cross-calls and stop_machine in a loop: the
  /// report, the crash stop with every other CPU's registers, and the failure exit.
  static func panicOnAP() -> TestResult {
    do throws(CrossCallError) {
      try X86_64Platform.calls.callSingle(on: victim, panicAfterAWhile, wait: false)
    } catch { return .fail("could not reach CPU \(victim)") }
    let start = Clock.nanoseconds()
    var rounds = 0
    while Clock.nanoseconds() &- start < 10_000_000_000 {
      X86_64Platform.calls.onEachCPU(countRound, wait: true)
      do throws(StopError) {
        try StopperThreads.stoppers.stopMachine(countRoundStop, cpus: CPUSet([.boot]))
      } catch {}
      rounds += 1
    }
    return .fail("no panic within 10 s (\(rounds) torture rounds)")
  }

  private static let rounds = Atomic<Int>(0)
  private static let countRound: CallFunction = { _ in rounds.wrappingAdd(1, ordering: .relaxed) }
  private static let countRoundStop: StopFunction = { _ in
    rounds.wrappingAdd(1, ordering: .relaxed)
    return 0
  }

  private static let panicAfterAWhile: CallFunction = { _ in
    let start = Clock.nanoseconds()
    while Clock.nanoseconds() &- start < 50_000_000 { CPUInstructions.pause() }
    Panic.halt("sendstop: panic on an AP while CPU 0 runs a torture loop")
  }
}
