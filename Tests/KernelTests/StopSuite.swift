/// `ktest=stop`. (Being written.)
enum StopSuite {
  static let suite = KernelTestSuite(name: "stop", cases: [])
}
