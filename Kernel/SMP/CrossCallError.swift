/// Why a cross-CPU call was refused. Each case names the Linux error it stands for.
public enum CrossCallError: Error, Equatable, Sendable {
  /// The CPU number is outside 0..<possible CPUs. Linux: -ENXIO.
  case invalidCPU(CPUIndex)
  /// The CPU exists but is not online. Linux: -ENXIO.
  case offline(CPUIndex)
  /// No online CPU in the mask. Linux: -ENXIO from smp_call_function_any().
  case noOnlineCPU
  /// The caller's record is still in flight from an earlier call. Linux: -EBUSY from
  /// smp_call_function_single_async().
  case recordBusy
}
