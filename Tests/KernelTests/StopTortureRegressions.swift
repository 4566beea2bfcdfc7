/// `ktest=stop_torture_regressions`: the kernel bugs the stop torture ran into (both
/// fixed), each made deterministic; each case fails on the old code. The leak first:
/// the race ended in a panic while it was there.
enum StopTortureRegressions {
  static let suite = KernelTestSuite(
    name: "stop_torture_regressions",
    cases: [
      KernelTestCase(name: "ended_threads_reclaimed_on_idle_ap", run: StopTortureThreadReap.run),
      KernelTestCase(name: "preempted_sleeper_woken_by_stopper", run: StopTortureWakeRace.run),
    ])
}
