/// `ktest=stop_torture`: a random mix of every stop API and CPU hotplug from every CPU.
/// (Being written.)
enum StopTortureSuite {
  static let suite = KernelTestSuite(name: "stop_torture", cases: [])
}
