import Synchronization

/// An application processor's first Swift code, called by Boot/trampoline.asm on the
/// stack it took from the pool (`stackTop`, ticket `ticket`), in long mode, interrupts
/// off, GS pointing at a header that says "CPU -1". Never returns.
@c(ap_entry)
func apEntry(stackTop: UInt64, ticket: UInt64) {
  LocalAPIC.enable()
  let apicID = LocalAPIC.currentID()
  guard let cpu = CPUs.index(of: apicID) else {
    log("smp: AP with APIC ID \(apicID.rawValue) (ticket \(ticket)) has no CPU slot; halting")
    Idle.parkForever()
  }
  if cpu == CPUs.deadAPForTesting {
    Idle.parkForever()  // test_dead_ap=: behave like an AP that never answers
  }
  let block = PerCPU.block(cpu)
  PerCPU.install(block)
  block.pointee.stackTop = stackTop
  block.pointee.stackBottom = stackTop - Trampoline.parameters.pointee.stackSize
  PerCPU.loadDescriptors(block)
  recordSelf(block, apicID: apicID)
  block.pointee.onlineTSC = CPUInstructions.readTSC()
  // Release: everything above is visible to whoever sees `online`; pairs with the
  // acquire in CPUs.state(of:). A failed exchange means the boot CPU gave up on us.
  let joined = block.pointee.state.compareExchange(
    expected: CPUState.starting.rawValue, desired: CPUState.online.rawValue, ordering: .releasing)
  guard joined.exchanged else {
    log("smp: CPU \(cpu) arrived after the boot CPU gave up on it; halting")
    Idle.parkForever()
  }
  APStartup.wakeWaiter()
  Idle.run()
}

/// Records what the CPU sees of itself through GS and the stack pointer, for the
/// `boot` suite to check against what the boot CPU assigned.
func recordSelf(_ block: UnsafeMutablePointer<PerCPU>, apicID: APICID) {
  block.pointee.observed = SelfObservation(
    gsSelf: CPUInstructions.readPerCPU(PerCPU.selfOffset),
    gsIndex: CPUInstructions.readPerCPU(PerCPU.indexOffset),
    stackPointer: CPUInstructions.readStackPointer(),
    hardwareAPICID: apicID.rawValue)
}
