/// `ktest=hotplug`. (Being written.)
enum HotplugSuite {
  static let suite = KernelTestSuite(name: "hotplug", cases: [])
}
