import Synchronization

/// The `ipi` cases that depend on interrupt context: a target busy with interrupts off
/// (a call handler that spins), bursts, mutual waits, and the CSD watchdog.
enum IPIContextCases {
  static var calls: CrossCalls<X86_64Platform> { X86_64Platform.calls }

  /// Reschedule IPIs sent by CPU number, to a mask, and with the all-but-self shorthand
  /// each reach exactly the CPUs they name (counted by the receivers' handlers).
  static func delivery() -> TestResult {
    let others = IPISuite.others
    guard let first = others.first else { return .skip("one CPU online") }
    let cases: [(StaticString, CPUSet, () -> Void)] = [
      ("by number", CPUSet([first]), { IPI.send(Vector.reschedule, to: first) }),
      ("to a mask", others, { IPI.send(Vector.reschedule, toAll: others) }),
      ("all but self", others, { IPI.sendToAllButSelf(Vector.reschedule) }),
    ]
    for (name, expected, send) in cases {
      let before = (0..<CPUs.possibleCount).map { reschedules(CPUIndex($0)) }
      send()
      for cpu in expected where !waitUntil(milliseconds: 5000, { reschedules(cpu) > before[cpu.rawValue] }) {
        return .fail("IPI \(name): CPU \(cpu.rawValue) took no reschedule interrupt within 5 s")
      }
      // Nothing else sends reschedule IPIs while the suite runs: any other change is
      // an IPI that went where it was not sent.
      for index in 0..<CPUs.possibleCount where !expected.contains(CPUIndex(index)) {
        if reschedules(CPUIndex(index)) != before[index] {
          return .fail("IPI \(name): CPU \(index) was interrupted but not named")
        }
      }
    }
    return .pass
  }

  private static func reschedules(_ cpu: CPUIndex) -> Int {
    PerCPU.block(cpu).pointee.reschedules.load(ordering: .relaxed)
  }

  static func asyncRefusesRecordInFlight() -> TestResult {
    guard let target = IPISuite.others.first else { return .skip("one CPU online") }
    let spinner = Spinner(on: target, forAtMost: 2_000_000_000)
    guard spinner.start() else { return .fail("CPU \(target.rawValue) never started spinning") }
    let counters = CPUCounters()
    let record = OwnedRecord(countOnThisCPU, counters.info)
    do {
      try calls.callSingleAsync(on: target, record.pointer)
    } catch {
      spinner.release()
      return .fail("first async call refused")
    }
    var refused = false
    do { try calls.callSingleAsync(on: target, record.pointer) } catch { refused = error == .recordBusy }
    spinner.release()
    guard refused else { return .fail("a record still in flight was accepted again") }
    guard counters.wait(for: target, toReach: 1, milliseconds: 1000),
      waitUntil(milliseconds: 1000, { !record.pointer.pointee.isLocked })
    else { return .fail("the async call did not complete within 1 s") }
    do { try calls.callSingleAsync(on: target, record.pointer) } catch {
      return .fail("reuse after completion refused")
    }
    guard counters.wait(for: target, toReach: 2, milliseconds: 1000),
      waitUntil(milliseconds: 1000, { !record.pointer.pointee.isLocked })
    else { return .fail("the reused record did not complete within 1 s") }
    return .pass
  }

  static func burstRaisesOneIPI() -> TestResult {
    guard let target = IPISuite.others.first else { return .skip("one CPU online") }
    let burst = 16
    let spinner = Spinner(on: target, forAtMost: 2_000_000_000)
    guard spinner.start() else { return .fail("CPU \(target.rawValue) never started spinning") }
    let counters = CPUCounters()
    let records = (0..<burst).map { _ in OwnedRecord(countOnThisCPU, counters.info) }
    let requested = calls.statistics.interruptsRequested(for: target)
    let before = requested.pointee.load(ordering: .relaxed)
    for record in records { try? calls.callSingleAsync(on: target, record.pointer) }
    let raised = requested.pointee.load(ordering: .relaxed) - before
    let ranEarly = counters.value(target)
    spinner.release()
    guard counters.wait(for: target, toReach: burst, milliseconds: 2000) else {
      return .fail("\(counters.value(target)) of \(burst) calls ran after the target re-enabled interrupts")
    }
    // The last function has run, but its record is unlocked only after it returns:
    // wait for our own records before they go out of scope.
    guard waitUntil(milliseconds: 1000, { records.allSatisfy { !$0.pointer.pointee.isLocked } }) else {
      for record in records { record.leak() }
      return .fail("records still in flight 1 s after their calls ran; leaked")
    }
    KTAP.diagnostic("\(burst) calls queued to a CPU with interrupts off raised \(raised) IPI(s)")
    guard ranEarly == 0 else { return .fail("\(ranEarly) calls ran while the target had interrupts off") }
    return raised == 1 ? .pass : .fail("\(burst) queued calls raised \(raised) IPIs, expected 1")
  }

  /// CPU 0 and another CPU each make waiting calls to the other with interrupts off.
  static func mutualWaits() -> TestResult {
    guard let partner = IPISuite.others.first else { return .skip("one CPU online") }
    let rounds = 200
    let group = ThreadGroup(capacity: 1)
    group.start(ThreadName("ipi-mutual", partner.rawValue), on: partner, callBackRepeatedly, nil)
    let counters = CPUCounters()
    calls.withInterruptsDisabledDeliberately {
      for _ in 0..<rounds { try? calls.callSingle(on: partner, countOnThisCPU, counters.info, wait: true) }
    }
    if let late = group.wait(milliseconds: 10_000) { return .fail("calls back to CPU 0: \(line: late)") }
    let ran = counters.value(partner)
    return ran == rounds ? .pass : .fail("\(ran) of \(rounds) calls ran on CPU \(partner.rawValue)")
  }

  /// The partner CPU's thread (`ipi-mutual/N`): 200 waiting calls to CPU 0 with
  /// interrupts off.
  private static let callBackRepeatedly: CallFunction = { _ in
    X86_64Platform.calls.withInterruptsDisabledDeliberately {
      for _ in 0..<200 { try? X86_64Platform.calls.callSingle(on: CPUIndex.boot, { _ in }, nil, wait: true) }
    }
  }

  /// A target spinning with interrupts off for 300 ms trips a 100 ms watchdog, which
  /// reports, re-sends the IPI, and reports the late completion.
  static func watchdog() -> TestResult {
    guard let target = IPISuite.others.first else { return .skip("one CPU online") }
    let saved = calls.watchdogTimeout
    calls.watchdogTimeout = 100_000_000
    defer { calls.watchdogTimeout = saved }
    let reports = calls.statistics.watchdogReports.load(ordering: .relaxed)
    let late = calls.statistics.lateCompletions.load(ordering: .relaxed)
    let spinner = Spinner(on: target, forAtMost: 300_000_000)
    guard spinner.start() else { return .fail("CPU \(target.rawValue) never started spinning") }
    let counters = CPUCounters()
    try? calls.callSingle(on: target, countOnThisCPU, counters.info, wait: true)
    let newReports = calls.statistics.watchdogReports.load(ordering: .relaxed) - reports
    let newLate = calls.statistics.lateCompletions.load(ordering: .relaxed) - late
    guard counters.value(target) == 1 else { return .fail("the call did not run") }
    return newReports == 1 && newLate == 1
      ? .pass : .fail("watchdog: \(newReports) reports, \(newLate) late completions; expected 1 and 1")
  }
}

/// A call record the test owns, at a stable address. Freed with its owner unless
/// `leak()` was called: a record still in flight must never be freed. A test waits
/// for its own records; one still in flight at deinit is leaked and said so.
final class OwnedRecord {
  let pointer = UnsafeMutablePointer<CallRecord>.allocate(capacity: 1)
  private var leaked = false

  init(_ function: CallFunction, _ info: UnsafeMutableRawPointer?) {
    pointer.initialize(to: CallRecord(function: function, info: info))
  }

  /// Keeps the record allocated for good, for a call that did not complete.
  func leak() { leaked = true }

  deinit {
    guard !leaked, !pointer.pointee.isLocked else {
      if !leaked { KTAP.diagnostic("a call record was still in flight when its owner went; leaked") }
      return
    }
    pointer.deinitialize(count: 1)
    pointer.deallocate()
  }
}
