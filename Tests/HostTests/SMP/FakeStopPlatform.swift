import LockstepKernel
import Synchronization
import Testing

/// The stop machinery's seam on fake CPUs: the host's monotonic clock as the timestamp,
/// and every CPU of the machine active unless a test marked it inactive
/// (`FakeSchedMachine.setActive`).
extension FakeSchedPlatform: StopPlatform {
  /// Host nanoseconds (CLOCK_MONOTONIC), comparable across the fake CPUs as the TSC is
  /// across real ones.
  static func timestamp() -> UInt64 { HostClock.now() }

  /// Timestamps are nanoseconds already.
  static func timestampNanoseconds(_ ticks: UInt64) -> UInt64 { ticks }

  /// Online and not marked inactive.
  static func isActive(_ cpu: CPUIndex) -> Bool {
    isOnline(cpu) && FakeSchedCPU.current.machine.isActive(cpu)
  }

  /// The online CPUs not marked inactive.
  static var activeCPUs: CPUSet {
    let machine = FakeSchedCPU.current.machine
    return CPUSet(machine.cpus.map(\.index).filter { machine.isActive($0) })
  }
}

extension FakeSchedMachine {
  /// The stop machinery; only on a machine made with `stoppers: true`.
  var stoppers: Stoppers<FakeSchedPlatform> {
    guard let stopMachinery else { preconditionFailure("a FakeSchedMachine made without stoppers") }
    return stopMachinery
  }

  /// Whether `cpu` counts as active (`StopPlatform.isActive`).
  func isActive(_ cpu: CPUIndex) -> Bool {
    inactiveCPUs.load(ordering: .relaxed) & (1 << UInt64(cpu.rawValue)) == 0
  }

  /// Marks `cpu` active or not, as hotplug does around a CPU coming up. From the test
  /// (or a kernel thread) before the code that reads it runs.
  func setActive(_ cpu: Int, _ active: Bool) {
    let bit: UInt64 = 1 << UInt64(cpu)
    if active {
      inactiveCPUs.bitwiseAnd(~bit, ordering: .relaxed)
    } else {
      inactiveCPUs.bitwiseOr(bit, ordering: .relaxed)
    }
  }

  /// Creates each CPU's stopper thread (`migration/N`: stopper class, bound to its CPU,
  /// running `runStopperThread()`) and registers it. Nothing runs yet. From `init`.
  func createStopperThreads(for stoppers: Stoppers<FakeSchedPlatform>) {
    for cpu in cpus {
      let thread = spawn(
        "migration", cpu.index.rawValue, on: cpu.index.rawValue, priority: .stopper,
        leavesWhenStopping: true
      ) { stoppers.runStopperThread() }
      stoppers.setThread(thread.thread, for: cpu.index)
    }
  }

  /// Starts the stoppers as the kernel does: the boot CPU's (and with it `stopMachine`
  /// through the stoppers), then each other CPU's as it comes online. From a kernel
  /// thread on CPU 0, since both take stopper locks and wake threads. Returns whether
  /// that thread finished in time (else an issue is recorded).
  func startStoppers(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    let stoppers = stoppers
    let boot = run("stopinit", on: 0) {
      stoppers.start(bootCPU: CPUIndex(0))
      for cpu in 1..<stoppers.cpuCount { stoppers.unpark(CPUIndex(cpu)) }
    }
    return waitForAll([boot], timeout: 10, "(starting the stoppers)", sourceLocation: sourceLocation)
  }
}
