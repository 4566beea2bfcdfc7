import Glibc
import LockstepKernel
import Synchronization

/// `SchedPlatform` on host threads, for `Scheduler<FakeSchedPlatform>` in a
/// `FakeSchedMachine`.
///
/// Every kernel thread is backed by its own host thread, bound to one `FakeSchedCPU`
/// (thread-local, set once: threads never change CPU). A CPU runs one kernel thread at
/// a time: each backing thread holds a baton while it runs, and `switchContext` hands
/// `to` its baton and then waits for `from`'s. The interrupt flag is per CPU, so it
/// passes with the baton as RFLAGS.IF passes with the saved context.
///
/// Separate from `FakePlatform`: a `FakeCPU` is one host thread whose interrupt runs
/// `CrossCalls`; here a CPU is several host threads and its interrupt reschedules.
enum FakeSchedPlatform: HostFakePlatform, SchedPlatform {
  /// The encoding of "interrupts on" in `InterruptState` (RFLAGS.IF, as on x86-64).
  static let interruptFlag: UInt64 = 0x200

  private static var cpu: FakeSchedCPU { FakeSchedCPU.current }

  /// The running kernel thread's CPU.
  static var currentCPU: CPUIndex { cpu.index }

  /// Turns the running CPU's interrupt flag off; returns how it was.
  static func saveAndDisableInterrupts() -> InterruptState {
    InterruptState(raw: cpu.interruptsOn.exchange(false, ordering: .relaxed) ? interruptFlag : 0)
  }

  /// Sets the interrupt flag from `state`; turning it on is an interrupt point.
  static func restoreInterrupts(_ state: InterruptState) {
    let on = state.raw & interruptFlag != 0
    cpu.interruptsOn.store(on, ordering: .relaxed)
    if on { cpu.interruptPoint() }
  }

  /// A spin-wait step: an interrupt point, then a yield of the host core. On an
  /// abandoned machine (a test timed out) the spinning host thread leaves instead, so
  /// that a hung protocol does not keep the host's cores busy for the rest of the run.
  static func relax() {
    if cpu.machine.isAbandoned { cpu.machine.leave() }
    cpu.interruptPoint()
    sched_yield()
  }

  /// `sti; hlt` with a one-shot timer (see `FakeSchedCPU.waitForInterrupt`).
  static func waitForInterrupt(atMost nanoseconds: UInt64) {
    cpu.waitForInterrupt(atMost: nanoseconds)
  }

  /// The host's monotonic clock.
  static func nanoseconds() -> UInt64 { HostClock.now() }

  /// Appends the line to the machine's log.
  static func log(_ line: LogLine) { cpu.machine.append(log: text(of: line)) }

  /// Records the panic for the test, then parks this kernel thread (and so its CPU)
  /// until the machine is abandoned.
  static func panic(_ line: LogLine) -> Never {
    cpu.machine.append(panic: "CPU \(currentCPU.rawValue): \(text(of: line))")
    cpu.machine.parkUntilAbandoned()
  }

  /// The running CPU's interrupt flag.
  static var interruptsEnabled: Bool { cpu.interruptsOn.load(ordering: .relaxed) }

  /// The machine's CPU count.
  static var possibleCPUCount: Int { cpu.machine.cpus.count }

  /// Every CPU of the machine is online.
  static func isOnline(_ cpu: CPUIndex) -> Bool {
    cpu.isKnown && cpu.rawValue < possibleCPUCount
  }

  /// All CPUs.
  static var onlineCPUs: CPUSet { CPUSet(cpu.machine.cpus.map(\.index)) }

  /// Not used by the scheduler: a call here is a broken expectation, reported.
  static func sendCallIPI(to target: CPUIndex) {
    cpu.machine.append(panic: "unexpected call IPI to CPU \(target.rawValue)")
  }

  /// Not used by the scheduler, as `sendCallIPI(to:)`.
  static func sendCallIPI(toAll cpus: CPUSet) {
    cpu.machine.append(panic: "unexpected broadcast call IPI")
  }

  /// Hands the CPU from `from` to `to`: gives `to` its baton, then waits for `from`'s.
  /// A dead `from` never runs again: its host thread leaves instead of waiting.
  static func switchContext(
    from: UnsafeMutablePointer<KernelThread>, to: UnsafeMutablePointer<KernelThread>
  ) {
    FakeKernelThread.backing(to).giveBaton()
    if from.pointee.state == .dead { cpu.machine.leave() }
    FakeKernelThread.backing(from).takeBaton()
  }

  /// Raises `cpu`'s interrupt; its running thread reschedules at its next interrupt
  /// point (`preemptOnInterruptExit`). Takes the machine's `ipiNanoseconds` first.
  static func sendReschedule(to target: CPUIndex) {
    let machine = cpu.machine
    if machine.ipiNanoseconds > 0 {
      let end = HostClock.now() + machine.ipiNanoseconds
      while HostClock.now() < end { sched_yield() }
    }
    machine.cpus[target.rawValue].raiseInterrupt()
  }

  /// Through the machine's scheduler.
  static func preemptDisable() { cpu.machine.scheduler.preemptDisable() }
  static func preemptEnable() { cpu.machine.scheduler.preemptEnable() }

  /// Into the running CPU's queue; it fires at an interrupt point (`interruptPoint`).
  static func armTimer(_ timer: UnsafeMutablePointer<Timer>, deadline: UInt64) {
    cpu.timers.arm(timer, deadline: deadline)
  }

  static func cancelTimer(_ timer: UnsafeMutablePointer<Timer>) -> Bool {
    cpu.timers.cancel(timer)
  }

  static var wakeThreadTimerFunction: CallFunction { fakeWakeThread }
  static var tickTimerFunction: CallFunction { fakeTick }

  private static func text(of line: LogLine) -> String {
    line.withBytes { String(decoding: $0, as: UTF8.self) }
  }
}

/// A sleep's timeout on a fake CPU.
private let fakeWakeThread: CallFunction = { argument in
  FakeSchedCPU.current.machine.scheduler.wake(argument!.assumingMemoryBound(to: KernelThread.self))
}

/// The tick on a fake CPU.
private let fakeTick: CallFunction = { _ in
  FakeSchedCPU.current.machine.scheduler.tickFired()
}

