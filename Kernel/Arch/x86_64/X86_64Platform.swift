/// The x86-64 kernel's answer to `SMPPlatform`.
enum X86_64Platform: SMPPlatform {
  static var currentCPU: CPUIndex { CPUIndex(max(PerCPU.currentIndexOrUnknown, 0)) }

  static func saveAndDisableInterrupts() -> InterruptState {
    InterruptState(raw: CPUInstructions.saveAndDisableInterrupts())
  }

  static func restoreInterrupts(_ state: InterruptState) {
    CPUInstructions.restoreInterrupts(state.raw)
  }

  static func relax() { CPUInstructions.pause() }

  static func nanoseconds() -> UInt64 { Clock.nanoseconds() }

  static func log(_ line: LogLine) { Console.write(line) }

  static func panic(_ line: LogLine) -> Never { Panic.halt(line) }
}
