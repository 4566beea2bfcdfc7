/// The boot CPU's way from its first Swift instruction to a running SMP machine.
///
/// The image's entry point (`kmain`, Image/ImageEntry.swift) calls `start`
/// and hands it `Hooks`: the command-line keys of its own and what to run once every CPU
/// is up. Init names no test. `start` never returns: it ends the machine through
/// isa-debug-exit with the status `afterBoot` gives.
enum KernelStart {
  /// What the image adds to the kernel's start-up.
  struct Hooks {
    /// Command-line keys besides the kernel's and the fault injections'. A function:
    /// nothing may allocate before `start` has set up the heap.
    var parameterKeys: () -> [BootParameterKey]
    /// Runs just before the APs are started, with the command line: where a test
    /// installs its bring-up hooks (`APStartup.testOnlyHook`).
    var beforeBringUp: (BootParameters) -> Void = { _ in }
    /// Whether to measure the bring-up floor before bringing the APs up.
    var measuresBringUpFloor: (BootParameters) -> Bool
    /// What runs after boot, with interrupts on, on the boot CPU: the command line and
    /// how bring-up went in, the exit status for the harness out.
    var afterBoot: (BootParameters, APStartup.Outcome) -> DebugExit.Status
  }

  /// Boots: serial, IDT, memory, command line, ACPI, clocks, APIC, CPUs; then runs
  /// `hooks.afterBoot` and leaves QEMU with its status. Boot CPU, long mode, interrupts
  /// off, on the boot stack.
  static func start(magic: UInt32, info: UInt64, hooks: Hooks) -> Never {
    Serial.initialize()
    log("Lockstep: booting")
    InterruptTable.build()
    InterruptTable.load()  // from here on, exceptions produce a panic report
    guard magic == MultibootInfo.bootMagic else {
      Panic.halt("not started by a Multiboot loader (EAX=\(hex: UInt64(magic)))")
    }
    let multiboot = MultibootInfo(address: info)
    BootMemory.setUpHeap(multiboot)
    KernelProtection.setUp()  // W^X, and the boot stack's guard page
    let parameters = BootCommandLine.parse(
      multiboot, extraKeys: BootFaultInjection.keys + hooks.parameterKeys())
    PIC.maskAll()
    let acpi = ACPIDiscovery.discover()
    if let fadt = acpi.fadt { PMTimer.configure(fadt) }
    Clock.calibrate()
    LocalAPIC.selectMode()
    LocalAPIC.enable()
    LocalAPIC.calibrateTimer()
    NMIWatchdog.setUp()
    IOAPIC.setUp(acpi.madt)  // every pin masked; the shell routes the console's input
    SerialInput.setUp(acpi.madt)
    let limits = BootCPUs.setUp(madt: acpi.madt, parameters: parameters)
    StopperThreads.setUp(
      timeoutMilliseconds: parameters.integer("stop_timeout_ms") ?? StopperThreads.defaultTimeoutMilliseconds)
    hooks.beforeBringUp(parameters)
    let outcome = BootCPUs.startSecondaries(
      limits: limits, parameters: parameters, measureFloor: hooks.measuresBringUpFloor(parameters))
    StopperThreads.activateSecondaries()
    BootCPUs.announce(outcome)
    KernelProtection.checkMappings()
    // Boot is done: from here on the boot CPU takes interrupts like every other CPU
    // (Linux: local_irq_enable() at the end of start_kernel's early part).
    CPUInstructions.enableInterrupts()
    DebugExit.exit(hooks.afterBoot(parameters, outcome))
  }
}
