import Synchronization

/// `ktest=ipi`: every cross-call API's normal path and error paths, on real CPUs and
/// real IPIs. Context-sensitive cases (bursts, mutual waits, the watchdog) are in
/// IPIContextCases.swift.
enum IPISuite {
  static let suite = KernelTestSuite(
    name: "ipi",
    cases: [
      KernelTestCase(name: "ipis_by_cpu_mask_and_all_but_self", run: IPIContextCases.delivery),
      KernelTestCase(name: "nmi_between_icr_writes_keeps_both_destinations", run: IPINMICase.run),
      KernelTestCase(name: "single_runs_once_on_its_target", run: singleRunsOnceOnTarget),
      KernelTestCase(name: "single_without_wait_runs", run: singleWithoutWait),
      KernelTestCase(name: "single_on_self_runs_here_irqs_off", run: singleOnSelf),
      KernelTestCase(name: "single_rejects_bad_and_offline_cpus", run: singleErrors),
      KernelTestCase(
        name: "async_refuses_a_record_in_flight", run: IPIContextCases.asyncRefusesRecordInFlight),
      KernelTestCase(name: "any_prefers_self_then_online", run: anySelection),
      KernelTestCase(name: "any_rejects_masks_without_online_cpus", run: anyErrors),
      KernelTestCase(name: "many_skips_caller_runs_once_each", run: manySkipsCaller),
      KernelTestCase(name: "many_with_one_target_takes_the_fast_path", run: manyFastPath),
      KernelTestCase(name: "on_each_cpu_includes_caller_irqs_off", run: onEachCPUIncludesCaller),
      KernelTestCase(name: "on_each_cpu_mask_and_cond", run: onEachCPUMaskAndCondition),
      KernelTestCase(name: "kick_all_cpus_sync_interrupts_all", run: kickAll),
      KernelTestCase(name: "queued_burst_raises_one_ipi", run: IPIContextCases.burstRaisesOneIPI),
      KernelTestCase(name: "mutual_waits_irqs_off_do_not_deadlock", run: IPIContextCases.mutualWaits),
      KernelTestCase(name: "watchdog_reports_stuck_target", run: IPIContextCases.watchdog),
    ])

  static var calls: CrossCalls<X86_64Platform> { X86_64Platform.calls }
  static var me: CPUIndex { X86_64Platform.currentCPU }
  static var others: CPUSet {
    var set = CPUs.online
    set.remove(me)
    return set
  }

  /// Checks that exactly the CPUs in `expected` ran once, and no other CPU ran.
  static func expectRanOnce(_ counters: CPUCounters, on expected: CPUSet) -> TestResult {
    for index in 0..<counters.count {
      let cpu = CPUIndex(index)
      let want = expected.contains(cpu) ? 1 : 0
      if counters.value(cpu) != want {
        return .fail("CPU \(index) ran the function \(counters.value(cpu)) times, expected \(want)")
      }
    }
    return .pass
  }

  static func singleRunsOnceOnTarget() -> TestResult {
    guard !others.isEmpty else { return .skip("one CPU online") }
    for target in others {
      let counters = CPUCounters()
      do {
        try calls.callSingle(on: target, countOnThisCPU, counters.info, wait: true)
      } catch {
        return .fail("call to CPU \(target.rawValue) refused")
      }
      if case .fail(let why) = expectRanOnce(counters, on: CPUSet([target])) { return .fail(why) }
    }
    return .pass
  }

  static func singleWithoutWait() -> TestResult {
    guard let target = others.first else { return .skip("one CPU online") }
    let counters = CPUCounters()
    do {
      try calls.callSingle(on: target, countOnThisCPU, counters.info, wait: false)
    } catch {
      return .fail("call refused")
    }
    guard counters.wait(for: target, toReach: 1, milliseconds: 1000) else {
      return .fail("CPU \(target.rawValue) did not run the call within 1 s")
    }
    return expectRanOnce(counters, on: CPUSet([target]))
  }

  static func singleOnSelf() -> TestResult {
    let probe = ContextProbe()
    do {
      try calls.callSingle(on: me, ContextProbe.record, probe.info, wait: true)
    } catch {
      return .fail("call to self refused")
    }
    return probe.expect(ranOn: [me], interruptsOff: true)
  }

  static func singleErrors() -> TestResult {
    let beyond = CPUIndex(CPUs.possibleCount + 3)
    do {
      try calls.callSingle(on: beyond, countOnThisCPU, nil, wait: true)
      return .fail("a call to CPU \(beyond.rawValue) of \(CPUs.possibleCount) was accepted")
    } catch {
      guard error == .invalidCPU(beyond) else { return .fail("wrong error for a bad CPU number") }
    }
    guard
      let offline = (0..<CPUs.possibleCount).map({ CPUIndex($0) }).first(where: {
        !X86_64Platform.isOnline($0)
      })
    else { return .pass }
    do {
      try calls.callSingle(on: offline, countOnThisCPU, nil, wait: true)
      return .fail("a call to offline CPU \(offline.rawValue) was accepted")
    } catch {
      return error == .offline(offline) ? .pass : .fail("wrong error for an offline CPU")
    }
  }

  static func anySelection() -> TestResult {
    let probe = ContextProbe()
    do {
      try calls.callAny(of: CPUs.online, ContextProbe.record, probe.info, wait: true)
      if case .fail(let why) = probe.expect(ranOn: [me], interruptsOff: true) { return .fail(why) }
      guard let target = others.first else { return .pass }
      let second = ContextProbe()
      try calls.callAny(of: others, ContextProbe.record, second.info, wait: true)
      return second.expect(ranOn: [target], interruptsOff: true)
    } catch {
      return .fail("callAny refused an online mask")
    }
  }

  static func anyErrors() -> TestResult {
    do {
      try calls.callAny(of: CPUSet(), countOnThisCPU, nil, wait: true)
      return .fail("an empty mask was accepted")
    } catch {
      guard error == .noOnlineCPU else { return .fail("wrong error for an empty mask") }
    }
    var offline = CPUSet((0..<CPUs.possibleCount).map { CPUIndex($0) })
    offline = offline.subtracting(CPUs.online)
    guard !offline.isEmpty else { return .pass }
    do {
      try calls.callAny(of: offline, countOnThisCPU, nil, wait: true)
      return .fail("a mask of offline CPUs was accepted")
    } catch {
      return error == .noOnlineCPU ? .pass : .fail("wrong error for an all-offline mask")
    }
  }

  static func manySkipsCaller() -> TestResult {
    let counters = CPUCounters()
    calls.callMany(CPUs.online, countOnThisCPU, counters.info, wait: true)
    return expectRanOnce(counters, on: others)
  }

  static func manyFastPath() -> TestResult {
    guard let target = others.first else { return .skip("one CPU online") }
    let counters = CPUCounters()
    let before = calls.statistics.interruptsRequested(for: target).pointee.load(ordering: .relaxed)
    calls.callMany(CPUSet([me, target]), countOnThisCPU, counters.info, wait: true)
    let after = calls.statistics.interruptsRequested(for: target).pointee.load(ordering: .relaxed)
    guard after == before + 1 else { return .fail("\(after - before) interrupts for one call") }
    return expectRanOnce(counters, on: CPUSet([target]))
  }

  static func onEachCPUIncludesCaller() -> TestResult {
    let probe = ContextProbe()
    calls.onEachCPU(ContextProbe.record, probe.info, wait: true)
    return probe.expect(ranOn: CPUs.online, interruptsOff: true)
  }

  static func onEachCPUMaskAndCondition() -> TestResult {
    let counters = CPUCounters()
    let mask = CPUSet(CPUs.online.filter { $0.rawValue % 2 == 0 })
    calls.onEachCPU(in: mask, countOnThisCPU, counters.info, wait: true)
    if case .fail(let why) = expectRanOnce(counters, on: mask) { return .fail("mask: \(line: why)") }
    let odd = CPUCounters()
    calls.onEachCPU(where: { cpu, _ in cpu.rawValue % 2 == 1 }, countOnThisCPU, odd.info, wait: true)
    return expectRanOnce(odd, on: CPUSet(CPUs.online.filter { $0.rawValue % 2 == 1 }))
  }

  static func kickAll() -> TestResult {
    var before: [Int] = []
    for cpu in others {
      before.append(calls.statistics.interruptsHandled(on: cpu).pointee.load(ordering: .relaxed))
    }
    calls.kickAllCPUsSync()
    for (position, cpu) in others.enumerated() {
      let after = calls.statistics.interruptsHandled(on: cpu).pointee.load(ordering: .relaxed)
      if after <= before[position] { return .fail("CPU \(cpu.rawValue) took no call interrupt") }
    }
    return .pass
  }
}
