import Synchronization

/// Starting the application processors: INIT-SIPI-SIPI to every AP at once, then one
/// bounded wait for all of them.
///
/// SDM Vol. 3A §9.4.4.1 "Typical BSP Initialization Sequence" sends INIT, waits 10 ms,
/// sends STARTUP, waits 200 us, sends a second STARTUP and waits 200 us. The first
/// attempt here drops the 10 ms wait and shortens the SIPI spacing to 10 us, as Linux
/// does for every CPU since the Pentium Pro (arch/x86/kernel/smpboot.c, init_udelay):
/// integrated APICs accept the STARTUP at once. APs that are not online by the deadline
/// get a second attempt with the SDM's full delays, then are reported and left offline.
/// INIT Level De-assert is not sent: the SDM says Pentium 4 and later ignore it, and the
/// x2APIC does not support it.
enum APStartup {
  struct Policy {
    /// How long each attempt waits for its APs, from that attempt's first INIT.
    var timeoutNanoseconds: UInt64
    /// Stack per AP.
    var stackSize = 16 * 1024
  }

  /// What happened, for the log and the benchmarks.
  struct Outcome {
    /// TSC at the first INIT.
    var firstINITTicks: UInt64 = 0
    /// TSC when the last started AP came online (or at the final deadline).
    var doneTicks: UInt64 = 0
  }

  /// Starts CPUs 1..<count in parallel and waits for them. Boot CPU, interrupts off,
  /// after `CPUs.setUp`.
  static func bringUp(count: Int, policy: Policy) -> Outcome {
    var outcome = Outcome()
    guard count > 1 else { return outcome }
    let targets = CPUSet((1..<count).map { CPUIndex($0) })
    installTrampoline(apCount: count - 1, policy: policy)
    waiter = X86_64Platform.currentCPU
    for cpu in targets {
      PerCPU.block(cpu.rawValue).pointee.state.store(CPUState.starting.rawValue, ordering: .relaxed)
    }
    outcome.firstINITTicks = CPUInstructions.readTSC()
    startAll(targets, initDelayMicroseconds: 0, sipiSpacingMicroseconds: 10)
    var missing = waitForOnline(targets, since: outcome.firstINITTicks, policy: policy)
    if !missing.isEmpty {
      log(
        "smp: \(missing.count) CPU(s) not online after \(policy.timeoutNanoseconds / 1_000_000) ms; retrying INIT-SIPI-SIPI with the SDM's delays"
      )
      let retryStart = CPUInstructions.readTSC()
      startAll(missing, initDelayMicroseconds: 10_000, sipiSpacingMicroseconds: 200)
      missing = waitForOnline(missing, since: retryStart, policy: policy)
    }
    outcome.doneTicks = CPUInstructions.readTSC()
    giveUp(on: missing, firstINIT: outcome.firstINITTicks)
    return outcome
  }

  private static func installTrampoline(apCount: Int, policy: Policy) {
    // A stack for every AP, and one more for each in case all of them need a retry.
    let stackCount = 2 * apCount
    let pool = KernelHeap.allocate(bytes: stackCount * policy.stackSize, alignment: 4096)
    Trampoline.install(
      TrampolineParameters(
        cr3: CPUInstructions.readCR3(), entry: KernelSymbols.apEntry,
        stackBase: UInt64(UInt(bitPattern: pool)), stackSize: UInt64(policy.stackSize),
        stackCount: UInt64(stackCount), nextTicket: 0,
        gsBase: KernelSymbols.earlyPerCPUForAPs))
  }

  /// INIT to every target, then two rounds of STARTUP.
  private static func startAll(
    _ targets: CPUSet, initDelayMicroseconds: UInt64, sipiSpacingMicroseconds: UInt64
  ) {
    for cpu in targets { LocalAPIC.send(.initAssert(to: apicID(cpu))) }
    Clock.delay(microseconds: initDelayMicroseconds)
    for round in 0..<2 {
      for cpu in targets where round == 0 || !isOnline(cpu) {
        LocalAPIC.send(.startup(page: Trampoline.startupPage, to: apicID(cpu)))
      }
      Clock.delay(microseconds: sipiSpacingMicroseconds)
    }
  }

  /// The CPU waiting in `waitForOnline`; each AP that comes online sends it
  /// `Vector.reschedule`. Written before the first INIT, read by APs after they start.
  nonisolated(unsafe) private static var waiter = CPUIndex.boot

  /// Sleeps in `hlt` until every target is online or the deadline passes; returns the
  /// rest. Each arriving AP wakes this CPU with an IPI, and a one-shot APIC timer wakes
  /// it at the deadline, so the wait costs no host CPU: under TCG the APs need it.
  private static func waitForOnline(_ targets: CPUSet, since start: UInt64, policy: Policy) -> CPUSet {
    let deadline = start &+ Clock.nanosecondsToTicks(policy.timeoutNanoseconds)
    var missing = targets
    while true {
      CPUInstructions.disableInterrupts()
      for cpu in missing where isOnline(cpu) { missing.remove(cpu) }
      let now = CPUInstructions.readTSC()
      if missing.isEmpty || now >= deadline { break }
      // Checked with interrupts off; an IPI pending since the check still wakes the nap.
      X86_64Platform.waitForInterrupt(atMost: Clock.ticksToNanoseconds(deadline - now))
    }
    LocalAPIC.stopTimer()
    return missing
  }

  /// For an AP that just came online: wakes the CPU waiting for it.
  static func wakeWaiter() {
    IPI.send(Vector.reschedule, to: waiter)
  }

  /// Marks each still-starting CPU failed (an AP that wins the race is online after all)
  /// and reports it by CPU number and APIC ID.
  private static func giveUp(on missing: CPUSet, firstINIT: UInt64) {
    let elapsed = Clock.ticksToNanoseconds(CPUInstructions.readTSC() &- firstINIT) / 1_000_000
    for cpu in missing {
      // Relaxed: the AP's side is a compare-exchange too; one of the two wins.
      let exchange = PerCPU.block(cpu.rawValue).pointee.state.compareExchange(
        expected: CPUState.starting.rawValue, desired: CPUState.failed.rawValue, ordering: .relaxed)
      guard exchange.exchanged else { continue }
      log(
        "smp: CPU \(cpu.rawValue) (APIC \(apicID(cpu).rawValue)) did not come online after 2 attempts (\(elapsed) ms since first INIT); left offline"
      )
    }
  }

  private static func isOnline(_ cpu: CPUIndex) -> Bool { CPUs.state(of: cpu.rawValue) == .online }

  private static func apicID(_ cpu: CPUIndex) -> APICID { CPUs.apicID(of: cpu) }
}
