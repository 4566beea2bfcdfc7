import Synchronization

/// Starting the application processors: INIT-SIPI-SIPI to every AP at once, one wait
/// that lasts while APs keep arriving, one retry for the missing, then a verdict per CPU.
///
/// SDM Vol. 3A §9.4.4.1 "Typical BSP Initialization Sequence" sends INIT, waits 10 ms,
/// sends STARTUP, waits 200 us, sends a second STARTUP and waits 200 us. The first
/// attempt here drops the 10 ms wait and shortens the SIPI spacing to 10 us, as Linux
/// does for every CPU since the Pentium Pro (arch/x86/kernel/smpboot.c, init_udelay):
/// integrated APICs accept the STARTUP at once. APs that are not online when the wait
/// ends get a second attempt with the SDM's full delays, then are given up on, INIT'd
/// back to wait-for-SIPI, and reported. INIT Level De-assert is not sent: the SDM says
/// Pentium 4 and later ignore it, and the x2APIC does not support it.
///
/// Every AP ends in exactly one of two places: online (it won `CPULifecycle.join`) or
/// failed (the boot CPU won `giveUp`) and reported. docs/cpu-lifecycle.md has the
/// argument, step by step.
enum APStartup {
  struct Policy {
    /// An attempt's wait ends when no AP has come online for this long
    /// (`ap_timeout_ms=`): a machine whose APs keep arriving is never cut short.
    var quietNanoseconds: UInt64
    /// However long APs keep arriving, an attempt waits at most this long. Linux waits
    /// up to 10 s for one AP; here 10 s bounds the whole attempt.
    var hardCapNanoseconds: UInt64 = 10_000_000_000
    /// Stack per AP.
    var stackSize = 16 * 1024
    var stackPages: Int { stackSize / 4096 }
    /// From one AP stack to the next: the stack, its guard page and the gap page above
    /// (GuardedStacks.allocateRun).
    var stackStride: UInt64 { UInt64(stackPages + 2) * 4096 }
  }

  /// What happened, for the log, the tests and the benchmarks.
  struct Outcome {
    /// TSC at the first INIT.
    var firstINITTicks: UInt64 = 0
    /// TSC once every AP had its verdict: no AP can come online after it.
    var doneTicks: UInt64 = 0
    /// CPUs retried, and CPUs given up on.
    var retried = CPUSet()
    var failed = CPUSet()
    /// The bring-up floor measured just before, when asked for (`measureFloor`).
    var floorNanoseconds: UInt64? = nil
  }

  /// Starts CPUs 1..<count in parallel and waits for them. Boot CPU, interrupts off,
  /// after `CPUs.setUp`.
  static func bringUp(count: Int, policy: Policy) -> Outcome {
    guard count > 1 else { return Outcome() }
    hotplugPolicy = policy
    installTrampoline(apCount: count - 1, policy: policy)
    return start(CPUSet((1..<count).map { CPUIndex($0) }), policy: policy)
  }

  /// The policy `bringUp` used, for CPUs that hotplug starts later.
  nonisolated(unsafe) private(set) static var hotplugPolicy = Policy(quietNanoseconds: 200_000_000)

  /// Starts one CPU that is offline (never started, given up on, or taken down) the way
  /// boot starts every AP: the same lifecycle, INIT-SIPI-SIPI, wait, retry and give-up.
  /// Its stacks are its own (two, for the retry), allocated at its first hotplug start:
  /// the boot pool's are in use by the CPUs that took them. Thread context (it may
  /// allocate), interrupts off, the hotplug lock held: one start at a time.
  /// Linux: bringup_cpu() -> __cpu_up() -> do_boot_cpu().
  static func startOne(_ cpu: CPUIndex, policy: Policy) -> Outcome {
    let block = block(cpu)
    if block.pointee.hotplugStacks == 0 {
      guard let stacks = GuardedStacks.allocateRun(count: 2, pages: policy.stackPages, owner: "hotplug-stack") else {
        log("smp: no memory for CPU \(cpu.rawValue)'s start-up stacks")
        var outcome = Outcome()
        outcome.failed = CPUSet([cpu])
        return outcome
      }
      block.pointee.hotplugStacks = stacks.bottom
    }
    installTrampoline(
      stackBase: block.pointee.hotplugStacks, stride: policy.stackStride, stackCount: 2, policy: policy)
    return start(CPUSet([cpu]), policy: policy)
  }

  /// INIT-SIPI-SIPI to `cpus` at once, one wait, one retry for the missing, then a
  /// verdict per CPU. The caller installed the trampoline.
  ///
  /// A stop (`smp_send_stop`, the crash stop) may begin at any point of it: the stop
  /// moves every CPU that is not running to `stopped`, which no claim, re-arm or join
  /// below can leave. The start tells the stop which CPUs a STARTUP may have reached
  /// (`SendStop.noteStartup`), and when it is over, so that the stop waits for the APs
  /// that may be running start-up code (not exactly: docs/send-stop.md names three gaps,
  /// in each of which the AP still parks).
  private static func start(_ cpus: CPUSet, policy: Policy) -> Outcome {
    var outcome = Outcome()
    waiter = X86_64Platform.currentCPU
    SMPStop.shared?.startupBegins()
    var targets = CPUSet()
    for cpu in cpus {
      // Not running start-up code (never started, given up on, or dead and held by
      // INIT): say so before the claim, which a stop may follow at once.
      let state = CPUs.state(of: cpu)
      if state == .possible || state == .dead || state == .failed {
        SMPStop.shared?.noteStartup(of: cpu, mayRun: false)
      }
      if block(cpu).pointee.lifecycle.claimForStart(attempt: UInt32(Trampoline.firstStartupPage)) {
        targets.insert(cpu)
      }
    }
    for cpu in targets { testOnlyHook?(BringUpPoint.beforeINIT.rawValue, cpu.rawValue) }
    KernelProtection.openTrampoline()
    outcome.firstINITTicks = CPUInstructions.readTSC()
    sendINIT(to: targets)
    for cpu in targets { testOnlyHook?(BringUpPoint.waitingForSIPI.rawValue, cpu.rawValue) }
    sendSTARTUP(to: targets, page: Trampoline.firstStartupPage, spacingMicroseconds: 10)
    let missing = waitForOnline(targets, policy: policy)
    if !missing.isEmpty {
      outcome.retried = retry(missing, policy: policy, firstINIT: outcome.firstINITTicks)
    }
    outcome.failed = giveUp(on: outcome.retried, firstINIT: outcome.firstINITTicks)
    // Every target is online (past the trampoline) or was sent INIT, which resets it
    // wherever it was: none runs the trampoline's code any more.
    KernelProtection.closeTrampoline()
    outcome.doneTicks = CPUInstructions.readTSC()
    SMPStop.shared?.startupEnds()
    return outcome
  }

  /// Points of a start-up where the `sendstop` suite begins a stop (test only).
  enum BringUpPoint: Int32 {
    /// The CPU claimed for the start, no INIT sent yet (starting CPU, per target).
    case beforeINIT = 1
    /// INIT sent, no STARTUP yet: the AP waits for SIPI (starting CPU, per target).
    case waitingForSIPI = 2
    /// The AP has run the trampoline and holds at its first Swift instruction, before
    /// it has its per-CPU block (the AP itself; the second argument is its APIC ID).
    case trampoline = 3
    /// The AP has looked for a stop and found none, and is about to go online (the AP).
    case beforeOnline = 4
    /// Each round of the starting CPU's wait for APs (the second argument is -1).
    case waiting = 5
  }

  /// Test only: called at each `BringUpPoint` with the point and a CPU number (an APIC
  /// ID at `.trampoline`), interrupts off; must not allocate. Set before the start.
  nonisolated(unsafe) static var testOnlyHook: (@convention(c) (Int32, Int) -> Void)? = nil

  /// The AP stack pool (`ap-stack/ticket`, each with a guard page); allocated once, so
  /// the floor's run and the real bring-up share it.
  nonisolated(unsafe) private static var stackPool: UInt64 = 0

  private static func installTrampoline(apCount: Int, policy: Policy, entry: UInt64 = KernelSymbols.apEntry) {
    // A stack for every AP, and one more for each in case all of them need a retry.
    let stackCount = 2 * apCount
    if stackPool == 0 {
      guard let pool = GuardedStacks.allocateRun(count: stackCount, pages: policy.stackPages, owner: "ap-stack")
      else { Panic.halt("smp: no memory for \(stackCount) AP stacks") }
      stackPool = pool.bottom
    }
    installTrampoline(
      stackBase: stackPool, stride: policy.stackStride, stackCount: stackCount, policy: policy, entry: entry)
  }

  private static func installTrampoline(
    stackBase: UInt64, stride: UInt64, stackCount: Int, policy: Policy, entry: UInt64 = KernelSymbols.apEntry
  ) {
    Trampoline.install(
      TrampolineParameters(
        cr3: CPUInstructions.readCR3(), entry: entry,
        stackBase: stackBase, stackSize: UInt64(policy.stackSize),
        stackCount: UInt64(stackCount), nextTicket: 0,
        gsBase: KernelSymbols.earlyPerCPUForAPs,
        earlyIDT: UInt64(UInt(bitPattern: KernelSymbols.earlyIDTStorage)), stackStride: stride))
  }

  /// The second attempt for `missing`: the boot CPU first takes each CPU out of
  /// `starting` (an AP that joined meanwhile stays online and is left alone), INITs only
  /// the CPUs it took, waits the SDM's 10 ms, re-arms them for the retry's STARTUP page,
  /// and starts them again. Returns the CPUs it retried.
  private static func retry(_ missing: CPUSet, policy: Policy, firstINIT: UInt64) -> CPUSet {
    var owned = CPUSet()
    for cpu in missing where block(cpu).pointee.lifecycle.claimForRetry() { owned.insert(cpu) }
    guard !owned.isEmpty else { return owned }
    var line: LogLine = "smp: "
    line.append(decimal: owned.count)
    line.append(" CPU(s) not online ")
    line.append(decimal: Int(milliseconds(since: firstINIT)))
    line.append(" ms after the first INIT, none arriving; retrying with the SDM's delays: CPUs ")
    line.append(cpuList: owned.map { $0.rawValue })
    log(line)
    sendINIT(to: owned)
    Clock.delay(microseconds: 10_000)
    // A stop may have claimed some meanwhile: those are not started again.
    var rearmed = CPUSet()
    for cpu in owned where block(cpu).pointee.lifecycle.rearm(attempt: UInt32(Trampoline.retryStartupPage)) {
      rearmed.insert(cpu)
    }
    sendSTARTUP(to: rearmed, page: Trampoline.retryStartupPage, spacingMicroseconds: 200)
    _ = waitForOnline(rearmed, policy: policy)
    return owned
  }

  /// INIT to each target; a stop in progress is told first that it no longer runs
  /// start-up code.
  private static func sendINIT(to targets: CPUSet) {
    for cpu in targets {
      SMPStop.shared?.noteStartup(of: cpu, mayRun: false)
      LocalAPIC.send(.initAssert(to: apicID(cpu)))
    }
  }

  /// Two rounds of STARTUP naming `page`; the second only to CPUs not online yet (a
  /// STARTUP reaching a CPU that already left wait-for-SIPI is ignored by it anyway).
  /// None to a CPU a stop had claimed at the check; one the stop claims between the
  /// check and the send finds `stopped` on arrival and parks. A stop is told of each
  /// STARTUP before it goes.
  /// (`floor`: the floor's run, whose APs are never claimed, and never join.)
  private static func sendSTARTUP(
    to targets: CPUSet, page: UInt8, spacingMicroseconds: UInt64, floor: Bool = false
  ) {
    for _ in 0..<2 {
      for cpu in targets where floor || CPUs.state(of: cpu) == .starting {
        SMPStop.shared?.noteStartup(of: cpu, mayRun: true)
        LocalAPIC.send(.startup(page: page, to: apicID(cpu)))
      }
      Clock.delay(microseconds: spacingMicroseconds)
    }
  }

  /// The CPU waiting in `waitForOnline`; each AP that comes online sends it
  /// `Vector.reschedule`. Written before the first INIT, read by APs after they start.
  nonisolated(unsafe) private static var waiter = CPUIndex.boot

  /// Sleeps in `hlt` until every target is online, or no target has come online for
  /// the quiet bound, or the hard cap has passed, both counted from now (the STARTUPs
  /// have just gone out); returns the CPUs still missing. Each
  /// arriving AP wakes this CPU with an IPI, and a one-shot APIC timer wakes it at the
  /// deadline, so the wait costs no host CPU: under TCG the APs need it.
  private static func waitForOnline(_ targets: CPUSet, policy: Policy) -> CPUSet {
    let start = CPUInstructions.readTSC()
    let quiet = Clock.nanosecondsToTicks(policy.quietNanoseconds)
    let cap = start &+ Clock.nanosecondsToTicks(policy.hardCapNanoseconds)
    var lastArrival = start
    var missing = targets
    while true {
      CPUInstructions.disableInterrupts()
      let before = missing.count
      for cpu in missing where isOnline(cpu) { missing.remove(cpu) }
      let now = CPUInstructions.readTSC()
      if missing.count < before { lastArrival = now }
      let deadline = min(lastArrival &+ quiet, cap)
      if missing.isEmpty || now >= deadline { break }
      // Checked with interrupts off; an IPI pending since the check still wakes the nap.
      if let hook = testOnlyHook {
        hook(BringUpPoint.waiting.rawValue, -1)
        X86_64Platform.waitForInterrupt(atMost: min(Clock.ticksToNanoseconds(deadline - now), 1_000_000))
        continue
      }
      X86_64Platform.waitForInterrupt(atMost: Clock.ticksToNanoseconds(deadline - now))
    }
    return missing
  }

  /// For an AP that just came online: wakes the CPU waiting for it.
  static func wakeWaiter() {
    IPI.send(Vector.reschedule, to: waiter)
  }

  /// Moves each retried CPU that is still starting to `failed`, INITs it back to
  /// wait-for-SIPI (it is not online, and an AP takes no lock before it is), and
  /// reports it. A CPU whose AP joined first is online after all. Returns the failed.
  private static func giveUp(on retried: CPUSet, firstINIT: UInt64) -> CPUSet {
    var failed = CPUSet()
    for cpu in retried where block(cpu).pointee.lifecycle.giveUp() {
      failed.insert(cpu)
      SMPStop.shared?.noteStartup(of: cpu, mayRun: false)
      LocalAPIC.send(.initAssert(to: apicID(cpu)))
      log(
        "smp: CPU \(cpu.rawValue) (APIC \(apicID(cpu).rawValue)) did not come online after 2 attempts (\(milliseconds(since: firstINIT)) ms since first INIT); offline"
      )
    }
    return failed
  }

  private static func milliseconds(since start: UInt64) -> UInt64 {
    Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- start) / 1_000_000
  }

  private static func block(_ cpu: CPUIndex) -> UnsafeMutablePointer<PerCPU> {
    PerCPU.block(cpu)
  }

  private static func isOnline(_ cpu: CPUIndex) -> Bool { CPUs.state(of: cpu) == .online }

  private static func apicID(_ cpu: CPUIndex) -> APICID { CPUs.apicID(of: cpu) }

  // MARK: The bring-up floor

  /// The same INIT-SIPI-SIPI to CPUs 1..<count, with APs that only stamp their arrival
  /// and halt (`ap_floor_entry`, no Swift): the cost QEMU and the trampoline impose,
  /// against which the real bring-up is measured. Run twice, and the second run timed,
  /// so the trampoline's code is as warm as it is for the real bring-up that follows.
  /// Returns nanoseconds from the first INIT to the last arrival, nil if an AP did not
  /// count in within 2 s. Boot CPU, before `bringUp`: the APs are then `possible`,
  /// never online, so the real bring-up's INIT may reset them.
  static func measureFloor(count: Int, policy: Policy) -> UInt64? {
    guard count > 1 else { return nil }
    var result: UInt64? = nil
    for _ in 0..<2 {
      result = floorRun(count: count, policy: policy)
      guard result != nil else { return nil }
    }
    return result
  }

  private static func floorRun(count: Int, policy: Policy) -> UInt64? {
    let targets = CPUSet((1..<count).map { CPUIndex($0) })
    installTrampoline(apCount: count - 1, policy: policy, entry: KernelSymbols.apFloorEntry)
    KernelSymbols.floorCount.pointee.store(0, ordering: .relaxed)
    KernelProtection.openTrampoline()
    let start = CPUInstructions.readTSC()
    sendINIT(to: targets)
    sendSTARTUP(to: targets, page: Trampoline.firstStartupPage, spacingMicroseconds: 10, floor: true)
    let deadline = start &+ Clock.nanosecondsToTicks(2_000_000_000)
    // Acquire pairs with the APs' `lock inc` (a full barrier): their stamps are written.
    while KernelSymbols.floorCount.pointee.load(ordering: .acquiring) < UInt64(count - 1) {
      guard CPUInstructions.readTSC() < deadline else {
        log(
          "bench: bring-up floor: only \(KernelSymbols.floorCount.pointee.load(ordering: .relaxed)) of \(count - 1) APs counted in within 2 s"
        )
        // The trampoline stays open: a late AP may still be in it. The real bring-up's
        // INIT resets it, and that start closes the page.
        return nil
      }
      // Nap like the real wait does, so the boot CPU leaves the host's cores to the APs;
      // the APs send no wake-up, so the timer ends each nap.
      X86_64Platform.waitForInterrupt(atMost: 100_000)
      CPUInstructions.disableInterrupts()
    }
    KernelProtection.closeTrampoline()  // every AP counted in: each halts in ap_floor_entry
    let tickets = Int(Trampoline.parameters.pointee.nextTicket)
    var last = start
    for ticket in 0..<min(tickets, 2 * (count - 1)) {
      last = max(last, KernelSymbols.floorArrivals[ticket])
    }
    return Clock.ticksToNanoseconds(last &- start)
  }
}
