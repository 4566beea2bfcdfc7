/// `bench`: stopper round trips, stop_machine, CPU hotplug. (Being written.)
enum StopBenchmark {
  static func run() {}
}
