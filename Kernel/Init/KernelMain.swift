/// The boot CPU's first Swift code, called by Boot/boot.asm in long mode with
/// interrupts off, on the boot stack. Never returns: it ends the machine through
/// isa-debug-exit with a status the harness reads.
@c(kmain)
func kmain(magic: UInt32, info: UInt64) {
  Serial.initialize()
  log("Lockstep: booting")
  InterruptTable.build()
  InterruptTable.load()  // from here on, exceptions produce a panic report
  guard magic == MultibootInfo.bootMagic else {
    Panic.halt("not started by a Multiboot loader (EAX=\(hex: UInt64(magic)))")
  }
  let multiboot = MultibootInfo(address: info)
  BootMemory.setUpHeap(multiboot)
  let parameters = BootCommandLine.parse(multiboot)
  PIC.maskAll()
  let acpi = ACPIDiscovery.discover()
  if let fadt = acpi.fadt { PMTimer.configure(fadt) }
  Clock.calibrate()
  LocalAPIC.selectMode()
  LocalAPIC.enable()
  LocalAPIC.calibrateTimer()
  let limits = BootCPUs.setUp(madt: acpi.madt, parameters: parameters)
  let outcome = BootCPUs.startSecondaries(limits: limits, parameters: parameters)
  BootCPUs.announce(outcome)
  // Boot is done: from here on the boot CPU takes interrupts like every other CPU
  // (Linux: local_irq_enable() at the end of start_kernel's early part).
  CPUInstructions.enableInterrupts()
  if parameters.ktests.isEmpty && !parameters.has("bench") && !CrossCallDemo.run() {
    DebugExit.exit(.testsFailed)
  }
  let status = KernelTests.run(parameters, bringUp: outcome)
  DebugExit.exit(status)
}

/// The 8259A PICs: masked, since every interrupt arrives through the local APIC.
enum PIC {
  static func maskAll() {
    CPUInstructions.outb(Port.picMasterData, 0xFF)
    CPUInstructions.outb(Port.picSlaveData, 0xFF)
  }
}

extension PMTimer {
  /// Takes the timer's port from the FADT.
  static func configure(_ fadt: FADT) {
    guard let timerPort = fadt.pmTimerPort, timerPort <= 0xFFFF else { return }
    port = UInt16(timerPort)
    is32Bit = fadt.pmTimerIs32Bit
  }
}
