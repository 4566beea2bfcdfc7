// The soak: the cross-call torture and the stop torture (with hotplug) in rounds for a set
// time (`ktest=soak soak_seconds=N`). `lockstep-harness soak` boots the long ones; the
// matrix keeps a short one so the path does not rot.

extension Matrix {
  /// 15 s of soak on 4 vCPUs: three rounds, every category run, counters judged.
  public static let soak: [BootConfig] = [soakConfig(vcpus: 4, seconds: 15)]

  /// The configuration `soak-<vcpus>`: `ktest=soak` for `seconds`, every CPU online, the
  /// suite passing and its counters clean (`SoakJudge`).
  /// - Parameters:
  ///   - vcpus: The vCPU count.
  ///   - seconds: The soak's length (`soak_seconds=`).
  ///   - seed: `torture_seed=`, to repeat a run's choices; nil lets the kernel pick.
  /// - Returns: The configuration; `lockstep-harness soak` boots the same.
  public static func soakConfig(vcpus: Int, seconds: Int, seed: Int? = nil) -> BootConfig {
    let seedText = seed.map { " torture_seed=\($0)" } ?? ""
    return BootConfig(
      name: "soak-\(vcpus)", smp: "\(vcpus)", append: "ktest=soak soak_seconds=\(seconds)\(seedText)",
      timeout: soakTimeout(vcpus: vcpus, seconds: seconds),
      expectations: Expectations(
        onlineCPUs: Array(0..<vcpus), ktapSuites: ["soak"], soakSeconds: seconds))
  }

  /// The bound for a soak of `seconds` on `vcpus` vCPUs: the soak, plus what its last
  /// round may overrun (a stop round waits up to 20 s for a stuck operation before it
  /// reports it, a cross-call round 60 s), plus boot and the restore, 90 s and 10 s a
  /// vCPU: 190 s past the soak at 8 vCPUs.
  public static func soakTimeout(vcpus: Int, seconds: Int) -> Duration {
    .seconds(seconds + 90 + 10 * vcpus)
  }
}
