import Foundation
import Testing

// The seed corpus of the ktap fuzz target (Fuzz/corpus/ktap/): the canned serial logs these
// tests judge. The test fails when the committed files differ from the fixtures;
// `LOCKSTEP_WRITE_SEEDS=1 swift test --filter FuzzSeedTests` rewrites them (Fuzz/README.md).
// Tests/HostTests/FuzzSeedTests.swift does the same for the kernel's parsers; the two test
// targets share no module, hence the second, smaller copy of the comparison.

@Suite("FuzzSeeds (harness)")
struct HarnessFuzzSeedTests {
  /// The ktap seeds by file name.
  static let seeds: [String: String] = [
    "boot4.log": CannedLog.boot4,
    "dead-ap.log": CannedLog.deadAP,
    "panic-ud.log": CannedLog.panicUD,
    "failing-case.log": CannedLog.failingCase,
    "stop-trace.log": CannedTrace.ktap4,
  ]

  /// Fuzz/corpus/ktap, found from this file's place (Tests/HarnessTests/).
  static let directory =
    String(#filePath).split(separator: "/", omittingEmptySubsequences: false).dropLast(3)
    .joined(separator: "/") + "/Fuzz/corpus/ktap"

  @Test func committedSeedsMatchFixtures() throws {
    let files = FileManager.default
    if ProcessInfo.processInfo.environment["LOCKSTEP_WRITE_SEEDS"] != nil {
      try? files.removeItem(atPath: Self.directory)
      try files.createDirectory(atPath: Self.directory, withIntermediateDirectories: true)
      for (name, log) in Self.seeds {
        try Data(log.utf8).write(to: URL(fileURLWithPath: Self.directory + "/" + name))
      }
    }
    let present = Set((try? files.contentsOfDirectory(atPath: Self.directory)) ?? [])
    #expect(present == Set(Self.seeds.keys), "seed files differ from the fixtures")
    for (name, log) in Self.seeds {
      let stored = files.contents(atPath: Self.directory + "/" + name).map { [UInt8]($0) }
      #expect(stored == Array(log.utf8), "ktap/\(name) differs from its fixture")
    }
  }
}
