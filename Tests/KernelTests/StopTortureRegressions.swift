/// `ktest=stop_torture_regressions`: the kernel bugs the stop torture ran into, each
/// made deterministic. The leak first: the race ends in a panic while it is there.
enum StopTortureRegressions {
  static let suite = KernelTestSuite(
    name: "stop_torture_regressions",
    cases: [
      KernelTestCase(name: "ended_threads_reclaimed_on_idle_ap", run: StopTortureThreadReap.run),
      KernelTestCase(name: "preempted_sleeper_woken_by_stopper", run: StopTortureWakeRace.run),
    ])
}
