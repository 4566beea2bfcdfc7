import Synchronization

/// Why a CPU could not be taken down or brought up.
enum HotplugError: Error, Equatable {
  /// The CPU number is outside 0..<possible CPUs.
  case invalidCPU(CPUIndex)
  /// `cpuDown` of a CPU that is not online (its state given). Linux: -EINVAL.
  case notOnline(CPUIndex, CPUState)
  /// `cpuUp` of a CPU that is not offline (its state given). Linux: -EINVAL.
  case notOffline(CPUIndex, CPUState)
  /// `cpuDown` of the last online CPU. Linux: -EBUSY.
  case lastOnlineCPU(CPUIndex)
  /// The CPU still has threads of its own (bound to it, not ended): they would never
  /// run again. Threads here are never migrated; end them first. Linux migrates
  /// unbound tasks and breaks the affinity of bound ones; -EBUSY stands for refusing.
  case hasThreads(CPUIndex, Int)
  /// The CPU went through the stop but did not report itself dead in time; it stays
  /// dying (halted or not, it takes no work).
  case didNotDie(CPUIndex, milliseconds: Int)
  /// INIT-SIPI-SIPI (and the retry) did not bring it online; it is `failed`.
  case didNotComeOnline(CPUIndex)
}

/// CPU hotplug: taking a CPU offline through `stopMachine` and starting it again with
/// INIT-SIPI-SIPI, as Linux's cpu_down()/cpu_up() do with their many steps folded
/// into the few this kernel has. docs/cpu-lifecycle.md tells the whole sequence.
///
/// Both hold the hotplug lock (`Stoppers.hotplugLock`) throughout, so they never
/// overlap each other or a `stopMachine`. Thread context.
enum Hotplug {
  /// How long `cpuDown` waits for the CPU to report itself dead after the stop.
  static let deathTimeoutNanoseconds: UInt64 = 5_000_000_000

  /// The CPU waiting in `cpuDown` for a CPU to report dead (written under the lock).
  nonisolated(unsafe) private static var waiter = CPUIndex.boot

  /// Takes `cpu` offline: it stops being active; one `stopMachine` runs, on that CPU
  /// and with every other CPU stopped, the step that marks it dying (no longer online),
  /// runs its queued cross-calls and parks its stopper (disabled first, so works
  /// queued before still run and later ones are refused); its stopper drains and parks,
  /// its idle loop reports it dead and halts with interrupts off; then an INIT holds it
  /// in wait-for-SIPI, ready for `cpuUp`.
  /// Linux: cpu_down() with take_cpu_down().
  static func cpuDown(_ cpu: CPUIndex) throws(HotplugError) {
    try withHotplugLock(cpu) { (state) throws(HotplugError) in try takeDown(cpu, from: state) }
  }

  private static func takeDown(_ cpu: CPUIndex, from state: CPUState) throws(HotplugError) {
    let stoppers = StopperThreads.stoppers
    guard state == .online else { throw .notOnline(cpu, state) }
    guard CPUs.online.count > 1 else { throw .lastOnlineCPU(cpu) }
    let residents = Threads.residentThreads(on: cpu)
    guard residents == 0 else { throw .hasThreads(cpu, residents) }
    let start = Clock.nanoseconds()
    CPUs.setActive(cpu, false)
    waiter = X86_64Platform.currentCPU
    do {
      try stoppers.stopMachineCPUsLocked(
        takeCPUDown, UnsafeMutableRawPointer(bitPattern: UInt(cpu.rawValue + 1)), cpus: CPUSet([cpu]))
    } catch {
      // Refused inside the stop: a thread was created on the CPU meanwhile.
      CPUs.setActive(cpu, true)
      throw .hasThreads(cpu, Threads.residentThreads(on: cpu))
    }
    guard waitUntilDead(cpu) else {
      let waited = Int((Clock.nanoseconds() &- start) / 1_000_000)
      log(
        "hotplug: CPU \(cpu) did not report itself dead \(waited) ms after its stop (stopper parked: \(stoppers.isParked(cpu))); left dying"
      )
      throw .didNotDie(cpu, milliseconds: waited)
    }
    // Halted with interrupts off already; INIT holds it in wait-for-SIPI, as at boot.
    LocalAPIC.send(.initAssert(to: CPUs.apicID(of: cpu)))
  }

  /// Starts `cpu` again (or for the first time: `maxcpus=` left it possible, or boot
  /// gave up on it) through the bring-up of boot, `APStartup.startOne`; once it is
  /// online its stopper takes work and it becomes active.
  /// Linux: cpu_up().
  static func cpuUp(_ cpu: CPUIndex) throws(HotplugError) {
    try withHotplugLock(cpu) { (state) throws(HotplugError) in try bringUp(cpu, from: state) }
  }

  /// Checks `cpu` is a CPU number, then runs `body` with the hotplug lock held and the
  /// CPU's lifecycle state read under it.
  private static func withHotplugLock(
    _ cpu: CPUIndex, _ body: (CPUState) throws(HotplugError) -> Void
  ) throws(HotplugError) {
    guard cpu.rawValue >= 0 && cpu.rawValue < CPUs.possibleCount else { throw .invalidCPU(cpu) }
    let lock = StopperThreads.stoppers.hotplugLock
    lock.lock(in: Threads.scheduler)
    defer { lock.unlock(in: Threads.scheduler) }
    try body(CPUs.state(of: cpu))
  }

  private static func bringUp(_ cpu: CPUIndex, from state: CPUState) throws(HotplugError) {
    guard state == .dead || state == .possible || state == .failed else { throw .notOffline(cpu, state) }
    let interrupts = CPUInstructions.saveAndDisableInterrupts()
    _ = APStartup.startOne(cpu, policy: APStartup.hotplugPolicy)
    CPUInstructions.restoreInterrupts(interrupts)
    guard CPUs.state(of: cpu) == .online else { throw .didNotComeOnline(cpu) }
    StopperThreads.activate(cpu)
  }

  /// Waits, napping, for `cpu` to report itself dead; the dying CPU's report wakes us.
  private static func waitUntilDead(_ cpu: CPUIndex) -> Bool {
    let interrupts = CPUInstructions.saveAndDisableInterrupts()
    defer { CPUInstructions.restoreInterrupts(interrupts) }
    let deadline = Clock.nanoseconds() &+ deathTimeoutNanoseconds
    while true {
      CPUInstructions.disableInterrupts()
      if CPUs.state(of: cpu) == .dead { return true }
      let now = Clock.nanoseconds()
      if now >= deadline { return false }
      X86_64Platform.waitForInterrupt(atMost: min(deadline - now, 1_000_000))
    }
  }

  /// For the idle loop: whether this CPU is dying and its stopper has drained and
  /// parked, so nothing is left for it to run.
  static func isReadyToDie(_ block: UnsafeMutablePointer<PerCPU>) -> Bool {
    block.pointee.lifecycle.state == .dying && StopperThreads.stoppers.isParked(block.pointee.cpu)
  }

  /// The dying CPU's last kernel code, from its idle loop: it reports itself dead,
  /// wakes the CPU waiting for that, and halts with interrupts off until the INIT.
  /// Linux: cpuhp_report_idle_dead(), then play_dead().
  static func dieHere(_ block: UnsafeMutablePointer<PerCPU>) -> Never {
    CPUInstructions.disableInterrupts()
    block.pointee.lifecycle.reportDead()
    IPI.send(Vector.reschedule, to: waiter)
    Idle.parkForever()
  }
}

/// `cpuDown`'s step inside the stop, on the CPU going down with every other CPU
/// stopped and interrupts off everywhere.
/// Linux: take_cpu_down().
private let takeCPUDown: StopFunction = { argument in
  let cpu = CPUIndex(Int(bitPattern: UInt(bitPattern: argument)) - 1)
  precondition(cpu == X86_64Platform.currentCPU, "take-down step on the wrong CPU")
  // Threads.create counts a thread before it checks the CPU is online: one created on
  // another CPU before this stop is counted here; one created after sees it dying.
  guard Threads.residentThreads(on: cpu) == 0 else { return 16 }  // EBUSY
  let block = PerCPU.block(cpu)
  _ = CPUs.changingMembership { block.pointee.lifecycle.beginDying() }
  X86_64Platform.calls.flushQueueBeforeOffline()
  StopperThreads.stoppers.park(cpu)
  return 0
}
