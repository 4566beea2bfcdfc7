import Synchronization

/// An application processor's first Swift code, called by Boot/trampoline.asm on the
/// stack it took from the pool (`stackTop`, ticket `ticket`), in long mode, interrupts
/// off, the early IDT loaded (no IST), GS pointing at a header that says "CPU -1".
/// `startupPage` is the page the STARTUP IPI named, which says which start-up attempt
/// this is. Never returns.
@c(ap_entry)
func apEntry(stackTop: UInt64, ticket: UInt64, startupPage: UInt64) {
  KernelProtection.forgetTrampoline()  // before the starter makes the page no-execute again
  BootFaultInjection.faultIfChosenEarly()
  APStartup.testOnlyHook?(APStartup.BringUpPoint.trampoline.rawValue, Int(InitialAPICID.read().rawValue))
  LocalAPIC.enable()
  let apicID = LocalAPIC.currentID()
  guard let cpu = CPUs.cpu(for: apicID) else {
    // Never INIT'd by the boot CPU (it is in no table), so it may speak.
    log("smp: AP with APIC ID \(apicID.rawValue) (ticket \(ticket)) has no CPU slot; halting")
    Idle.parkForever()
  }
  if BootFaultInjection.isDead(cpu) { Idle.parkForever() }
  let block = PerCPU.block(cpu)
  PerCPU.install(block)
  block.pointee.stackTop = stackTop
  block.pointee.stackBottom = stackTop - Trampoline.parameters.pointee.stackSize
  PerCPU.loadDescriptors(block)
  BootFaultInjection.delayIfSlow(cpu)
  block.pointee.onlineTSC = CPUInstructions.readTSC()
  // A stop in progress: park before going online, and tell it so. The join below fails
  // anyway if the stop claimed this CPU first; this look only parks sooner.
  if SMPStop.shared?.mustPark() == true { SMPStop.parkStartingCPU(cpu) }
  APStartup.testOnlyHook?(APStartup.BringUpPoint.beforeOnline.rawValue, cpu.rawValue)
  let outcome = CPUs.changingMembership { block.pointee.lifecycle.join(attempt: UInt32(startupPage)) }
  guard outcome == .joined else {
    if outcome == .refused(.stopped) { SMPStop.parkStartingCPU(cpu) }
    // A retry or a give-up came first; an INIT is on its way or already sent. Say
    // nothing: a console record or printer role held across that INIT would never be
    // released. The boot CPU reports this CPU.
    block.pointee.refusedJoins.wrappingAdd(1, ordering: .relaxed)
    Idle.parkForever()
  }
  Threads.adoptIdleFlow(of: cpu, stackBottom: block.pointee.stackBottom, stackTop: block.pointee.stackTop)
  CPUTimers.restart()  // after a hotplug restart: timers left from before the INIT
  APStartup.wakeWaiter()
  Idle.run()
}
