import Glibc
import LockstepKernel
import Synchronization

/// `SendStopPlatform` on host threads: each requirement forwards to the
/// `FakeSendStopCPU` running the caller (thread-local) and, through it, to its
/// `FakeSendStopMachine`. Only fake CPU threads may call in.
///
/// The stop uses none of the cross-call requirements: `sendCallIPI` is reported as a
/// broken contract.
enum FakeSendStopPlatform: HostFakePlatform, SendStopPlatform {
  /// The encoding of "interrupts on" in `InterruptState` (RFLAGS.IF, as on x86-64).
  static let interruptFlag: UInt64 = 0x200

  private static var cpu: FakeSendStopCPU { FakeSendStopCPU.current }

  /// The running fake CPU's number.
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

  /// A spin-wait step: an interrupt point, then a yield of the host core. On a machine
  /// being torn down the spinning thread leaves instead, so that a stop that never ends
  /// (a broken bound) does not keep a host core busy for the rest of the run.
  static func relax() {
    let cpu = cpu
    if cpu.isTearingDown { cpu.leave() }
    cpu.interruptPoint()
    sched_yield()
  }

  /// `sti`, an interrupt point, and a nap of at most `nanoseconds`.
  static func waitForInterrupt(atMost nanoseconds: UInt64) {
    cpu.interruptsOn.store(true, ordering: .relaxed)
    cpu.interruptPoint()
    usleep(UInt32(min(nanoseconds / 1000, 1000)))
    cpu.interruptPoint()
  }

  /// The host's monotonic clock.
  static func nanoseconds() -> UInt64 { HostClock.now() }

  /// Appends the line to the machine's log.
  static func log(_ line: LogLine) { cpu.machine.append(log: text(of: line)) }

  /// Records the panic for the test to report, then parks this CPU.
  static func panic(_ line: LogLine) -> Never {
    cpu.machine.append(panic: "CPU \(currentCPU.rawValue): \(text(of: line))")
    cpu.park()
  }

  /// Nothing preempts a fake CPU's thread: no-ops.
  static func preemptDisable() {}
  static func preemptEnable() {}

  /// The running CPU's interrupt flag.
  static var interruptsEnabled: Bool { cpu.interruptsOn.load(ordering: .relaxed) }

  /// The machine's CPU count.
  static var possibleCPUCount: Int { cpu.machine.cpus.count }

  /// Whether `cpu`'s lifecycle state is `online`.
  static func isOnline(_ cpu: CPUIndex) -> Bool { lifecycleState(of: cpu) == .online }

  /// The CPUs whose lifecycle state is `online`.
  static var onlineCPUs: CPUSet {
    CPUSet((0..<possibleCPUCount).map { CPUIndex($0) }.filter { isOnline($0) })
  }

  /// Not used by the stop: a broken contract.
  static func sendCallIPI(to cpu: CPUIndex) {
    Self.cpu.machine.append(panic: "sendCallIPI(to: \(cpu.rawValue)) during a send-stop test")
  }

  /// Not used by the stop: a broken contract.
  static func sendCallIPI(toAll cpus: CPUSet) {
    cpu.machine.append(panic: "sendCallIPI(toAll:) during a send-stop test")
  }

  // MARK: SendStopPlatform

  /// Delivers `mechanism` to each CPU of `cpus` (see `FakeSendStopMachine.sendStopRequest`).
  static func sendStopRequest(_ mechanism: StopMechanism, to cpus: CPUSet) {
    cpu.machine.sendStopRequest(mechanism, to: cpus)
  }

  /// `cpu`'s lifecycle state in the machine.
  static func lifecycleState(of cpu: CPUIndex) -> CPUState {
    Self.cpu.machine.lifecycle(cpu.rawValue).pointee.state
  }

  /// `CPULifecycle.claimForStop()` on `cpu`'s lifecycle in the machine.
  static func claimForStop(_ cpu: CPUIndex) -> StopClaim {
    Self.cpu.machine.lifecycle(cpu.rawValue).pointee.claimForStop()
  }

  /// The running fake CPU stops itself (see `FakeSendStopCPU.stopThisCPU`).
  static func stopThisCPU(_ mechanism: StopMechanism) -> Never {
    cpu.stopThisCPU(mechanism)
  }

  private static func text(of line: LogLine) -> String {
    line.withBytes { String(decoding: $0, as: UTF8.self) }
  }
}
