/// What each online CPU sees of itself, asked for with a cross-call: the `boot` suite
/// compares it with what the boot CPU assigned (per-CPU block, stack, APIC ID).
struct SelfProbe {
  var gsSelf: UInt64 = 0
  var gsIndex: UInt64 = 0
  var stackPointer: UInt64 = 0
  var hardwareAPICID: UInt32 = 0

  static let missing: LogLine = "a CPU did not answer the self probe within 1 s"

  /// Runs on the probed CPU (in its call handler, on its own stack).
  private static let record: CallFunction = { info in
    let probes = info!.assumingMemoryBound(to: SelfProbe.self)
    probes[PerCPU.currentCPU.rawValue] = SelfProbe(
      gsSelf: CPUInstructions.readPerCPU(PerCPU.selfOffset),
      gsIndex: CPUInstructions.readPerCPU(PerCPU.indexOffset),
      stackPointer: CPUInstructions.readStackPointer(),
      hardwareAPICID: LocalAPIC.currentID().rawValue)
  }

  /// Every online CPU's probe, indexed by CPU number; nil if one did not answer.
  static func takeFromEveryCPU() -> [SelfProbe]? {
    let probes = UnsafeMutablePointer<SelfProbe>.allocate(capacity: CPUs.possibleCount)
    defer { probes.deallocate() }
    probes.initialize(repeating: SelfProbe(), count: CPUs.possibleCount)
    for cpu in CPUs.online {
      // Waiting calls: the record lives on this stack until the target is done.
      guard (try? X86_64Platform.calls.callSingle(on: cpu, record, probes, wait: true)) != nil else {
        return nil
      }
    }
    return Array(UnsafeBufferPointer(start: probes, count: CPUs.possibleCount))
  }
}
