/// The x86-64 kernel's answer to `SMPPlatform`.
enum X86_64Platform: SMPPlatform {
  /// `CPUIndex.unknown` on an AP that has not found its slot yet (see apEntry); such
  /// an AP takes no lock and makes no call.
  static var currentCPU: CPUIndex { PerCPU.currentCPU }

  static func saveAndDisableInterrupts() -> InterruptState {
    InterruptState(raw: CPUInstructions.saveAndDisableInterrupts())
  }

  static func restoreInterrupts(_ state: InterruptState) {
    CPUInstructions.restoreInterrupts(state.raw)
  }

  static func relax() { CPUInstructions.pause() }

  /// Waits for the next interrupt on this CPU, or `nanoseconds`. A kernel thread that
  /// may sleep sleeps until then, so the CPU's other threads run meanwhile
  /// (`Scheduler.sleepUntilInterrupt`); otherwise (the idle thread, preemption off, or
  /// before the scheduler runs) the CPU arms its nap timer and halts, and the timer is
  /// disarmed if it did not fire. Entered with interrupts off; `sti; hlt` or the
  /// pending interrupt keep a wake-up that came before from being lost. Returns with
  /// interrupts on.
  static func waitForInterrupt(atMost nanoseconds: UInt64) {
    CPUInstructions.disableInterrupts()  // already off by contract; cheap insurance
    if Threads.isSetUp && Threads.scheduler.isRunningOnThisCPU && Threads.scheduler.canSleep {
      Threads.scheduler.sleepUntilInterrupt(deadline: Clock.nanoseconds() &+ nanoseconds)
      CPUInstructions.enableInterrupts()
      return
    }
    let nap = PerCPU.current.pointee.napTimer!
    CPUTimers.arm(nap, deadline: Clock.nanoseconds() &+ nanoseconds)
    CPUInstructions.enableInterruptsAndHalt()
    CPUInstructions.disableInterrupts()
    _ = CPUTimers.cancel(nap)
    CPUInstructions.enableInterrupts()
  }

  static func nanoseconds() -> UInt64 { Clock.nanoseconds() }

  /// Through the scheduler once this CPU runs threads; a no-op before.
  static func preemptDisable() {
    if Threads.isSetUp && Threads.scheduler.isRunningOnThisCPU { Threads.scheduler.preemptDisable() }
  }

  static func preemptEnable() {
    if Threads.isSetUp && Threads.scheduler.isRunningOnThisCPU { Threads.scheduler.preemptEnable() }
  }

  static func log(_ line: LogLine) { Console.write(line) }

  static func panic(_ line: LogLine) -> Never { Panic.halt(line) }

  static var interruptsEnabled: Bool { CPUInstructions.interruptsEnabled }

  static var possibleCPUCount: Int { CPUs.possibleCount }

  static func isOnline(_ cpu: CPUIndex) -> Bool {
    cpu.rawValue >= 0 && cpu.rawValue < CPUs.possibleCount && CPUs.state(of: cpu) == .online
  }

  static var onlineCPUs: CPUSet { CPUs.online }

  static func sendCallIPI(to cpu: CPUIndex) {
    IPI.send(Vector.callFunctionSingle, to: cpu)
  }

  /// One IPI per CPU: the all-but-self shorthand would also reach CPUs outside the
  /// set (not started, parked, or simply not asked).
  static func sendCallIPI(toAll cpus: CPUSet) {
    IPI.send(Vector.callFunction, toAll: cpus)
  }
}

extension X86_64Platform {
  nonisolated(unsafe) private static var callsInstance: CrossCalls<X86_64Platform>? = nil

  /// The kernel's cross-CPU calls (Kernel/SMP). - Precondition: `setUpCalls` has run.
  static var calls: CrossCalls<X86_64Platform> { callsInstance! }

  /// Allocates the call queues and records for every possible CPU. Boot CPU, once the
  /// CPU table is known, before APs start.
  static func setUpCalls(watchdogTimeoutMilliseconds: Int, panicAfterMilliseconds: Int) {
    callsInstance = CrossCalls<X86_64Platform>(
      cpuCount: CPUs.possibleCount, watchdogTimeout: UInt64(watchdogTimeoutMilliseconds) * 1_000_000,
      panicAfter: UInt64(panicAfterMilliseconds) * 1_000_000)
  }

  /// Interrupts `cpu` so that it leaves `hlt` and looks for work.
  /// Linux: smp_send_reschedule().
  static func sendReschedule(to cpu: CPUIndex) {
    IPI.send(Vector.reschedule, to: cpu)
  }
}
