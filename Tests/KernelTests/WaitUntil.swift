/// Waits until `condition` holds or `milliseconds` pass; false on timeout. After 20 us,
/// with interrupts on, it naps between checks rather than spin, leaving the host's cores to
/// the CPUs it waits for. The caller reports what it waited for.
func waitUntil(milliseconds: UInt64, _ condition: () -> Bool) -> Bool {
  let start = Clock.nanoseconds()
  let deadline = start + milliseconds * 1_000_000
  while !condition() {
    let now = Clock.nanoseconds()
    if now > deadline { return false }
    if now - start > 20_000 && CPUInstructions.interruptsEnabled {
      CPUInstructions.disableInterrupts()
      X86_64Platform.waitForInterrupt(atMost: 50_000)
    } else {
      CPUInstructions.pause()
    }
  }
  return true
}
