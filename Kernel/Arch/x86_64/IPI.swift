/// Sending inter-processor interrupts by CPU number: the one place that turns a
/// `CPUIndex` into the APIC ID the hardware wants (`CPUs.apicID(of:)`).
enum IPI {
  /// Sends `vector` to `cpu`. Any context, NMI included (see `LocalAPIC.send`).
  static func send(_ vector: Vector, to cpu: CPUIndex) {
    LocalAPIC.send(.fixed(vector, to: CPUs.apicID(of: cpu)))
  }

  /// Sends `vector` to each CPU in `cpus`, one ICR write each (physical destination
  /// mode names one APIC at a time). Any context, NMI included.
  static func send(_ vector: Vector, toAll cpus: CPUSet) {
    for cpu in cpus { send(vector, to: cpu) }
  }

  /// Sends `vector` to every other APIC with the all-excluding-self shorthand (SDM Vol.
  /// 3A §11.6.1): one ICR write whatever the CPU count. It reaches APICs the kernel did
  /// not start too (beyond `maxcpus=`, or failed); those sit with interrupts off, so the
  /// interrupt stays pending there, harmless, until an INIT clears it. Any context,
  /// NMI included.
  static func sendToAllButSelf(_ vector: Vector) {
    var command = InterruptCommand.fixed(vector, to: APICID(0))
    command.shorthand = .allExcludingSelf
    LocalAPIC.send(command)
  }
}

extension IPI {
  /// Sends a non-maskable interrupt to `cpu` (ICR delivery mode NMI; SDM Vol. 3A
  /// §11.6.1). Any context, NMI included. Only to a CPU that has finished starting: an
  /// NMI held by a CPU in wait-for-SIPI is delivered after its STARTUP, in real mode,
  /// under QEMU's KVM, and that CPU never comes up.
  static func sendNMI(to cpu: CPUIndex) {
    LocalAPIC.send(.nmi(to: CPUs.apicID(of: cpu)))
  }
}
