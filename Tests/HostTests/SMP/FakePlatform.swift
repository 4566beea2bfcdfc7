import Glibc
import LockstepKernel
import Synchronization

/// `SMPPlatform` on host threads: each requirement forwards to the `FakeCPU` running
/// the caller and, through it, to its `FakeMachine`. Only fake CPU threads may call in.
enum FakePlatform: HostFakePlatform, SMPPlatform {
  /// The encoding of "interrupts on" in `InterruptState` (RFLAGS.IF, as on x86-64).
  static let interruptFlag: UInt64 = 0x200

  /// The running fake CPU's number.
  static var currentCPU: CPUIndex { FakeCPU.current.index }

  /// Turns the running CPU's interrupt flag off; returns how it was.
  static func saveAndDisableInterrupts() -> InterruptState {
    let wasOn = FakeCPU.current.interruptsOn.exchange(false, ordering: .relaxed)
    return InterruptState(raw: wasOn ? interruptFlag : 0)
  }

  /// Sets the interrupt flag from `state`; turning it on is an interrupt point.
  static func restoreInterrupts(_ state: InterruptState) {
    let cpu = FakeCPU.current
    let on = state.raw & interruptFlag != 0
    cpu.interruptsOn.store(on, ordering: .relaxed)
    if on { cpu.takePendingInterrupt() }
  }

  /// A spin-wait step: an interrupt point, then a yield so spinning fake CPUs leave the
  /// host's cores to the CPUs they wait for.
  static func relax() {
    FakeCPU.current.takePendingInterrupt()
    sched_yield()
  }

  /// Naps until a call interrupt arrives or `nanoseconds` pass (see
  /// `FakeCPU.waitForInterrupt(atMost:)`).
  static func waitForInterrupt(atMost nanoseconds: UInt64) {
    FakeCPU.current.waitForInterrupt(atMost: nanoseconds)
  }

  /// The host's monotonic clock.
  static func nanoseconds() -> UInt64 { HostClock.now() }

  /// Appends the line to the machine's log.
  static func log(_ line: LogLine) {
    FakeMachine.current.append(log: text(of: line))
  }

  /// Records the panic for the test to report, then parks this CPU for good (the
  /// machine is then reported as stuck and kept alive).
  static func panic(_ line: LogLine) -> Never {
    FakeMachine.current.append(panic: "CPU \(currentCPU.rawValue): \(text(of: line))")
    while true { usleep(100_000) }
  }

  /// The running CPU's interrupt flag.
  /// Nothing preempts a fake CPU's thread: a no-op.
  static func preemptDisable() {}
  static func preemptEnable() {}

  static var interruptsEnabled: Bool { FakeCPU.current.interruptsOn.load(ordering: .relaxed) }

  /// The machine's CPU count.
  static var possibleCPUCount: Int { FakeMachine.current.cpus.count }

  /// Whether `cpu` exists and is in the online mask.
  static func isOnline(_ cpu: CPUIndex) -> Bool {
    let cpus = FakeMachine.current.cpus
    guard cpus.indices.contains(cpu.rawValue) else { return false }
    return cpus[cpu.rawValue].online.load(ordering: .sequentiallyConsistent)
  }

  /// The online mask.
  static var onlineCPUs: CPUSet { FakeMachine.current.onlineCPUs }

  /// Marks a call interrupt pending on `cpu` (unless dropped on purpose).
  static func sendCallIPI(to cpu: CPUIndex) { FakeMachine.current.sendIPI(to: cpu) }

  /// Marks a call interrupt pending on each CPU of `cpus`.
  static func sendCallIPI(toAll cpus: CPUSet) { FakeMachine.current.sendIPI(toAll: cpus) }

  private static func text(of line: LogLine) -> String {
    line.withBytes { String(decoding: $0, as: UTF8.self) }
  }
}

