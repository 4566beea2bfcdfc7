import Foundation
import LockstepKernel
import Testing

// The seed corpora of the ACPI and boot-parameter fuzz targets (Fuzz/corpus/<target>/), built
// from the fixtures these tests use, so the seeds follow the fixtures. The test fails when the
// committed files differ from what the fixtures build now; `LOCKSTEP_WRITE_SEEDS=1 swift test
// --filter FuzzSeedTests` rewrites them (Fuzz/README.md). The KTAP seeds come from
// Tests/HarnessTests/FuzzSeedTests.swift in the same way.

/// The seeds of each target, by file name.
enum FuzzSeeds {
  static var all: [String: [String: [UInt8]]] {
    [
      "acpi_rsdp": [
        "rsdp-v1": RSDPFixture.version1(rsdt: 0x07FE_1234),
        "rsdp-v2": RSDPFixture.version2(rsdt: 0x1000, xsdt: 0x1_2345_6000),
      ],
      "acpi_sdt": [
        "rsdt": ACPITests.rootTable("RSDT", entrySize: 4, [0x7FE_0000, 0, 0x7FE_1000]),
        "xsdt": ACPITests.rootTable("XSDT", entrySize: 8, [0x1_0000_0000, 0x7FE_1000]),
      ],
      "acpi_madt": [
        "madt-four-cpus": MADTTests.fourCPUs(),
        "madt-x2apic": x2APICMADT(),
      ],
      "acpi_fadt": [
        "fadt-legacy-timer": ACPITests.fadt(length: 116, port: 0x608, flags: 1 << 8),
        "fadt-extended-timer": ACPITests.fadt(
          length: 276, port: 0x608, flags: 1 << 8, extended: (1, 0x1808)),
      ],
      "acpi_chain": [
        "chain-rsdt": memoryImage(xsdt: false),
        "chain-xsdt": memoryImage(xsdt: true),
      ],
      "boot_params": commandLines(),
      "shell_line": shellSessions(),
    ]
  }

  /// What the shell_line target is typed: a first byte choosing the CPU count (N + 1), then
  /// the bytes of a session like the harness's `shell-4` script (ShellTests.swift's lines).
  static func shellSessions() -> [String: [UInt8]] {
    let typed: [String: String] = [
      "shell-commands": "help\rcpus\r  call \t 1  \rcall 9\roffline 1\ronline 1\rstop\rtorture 2\rbench\r",
      "shell-malformed": "call x\rcall -1\rcall 99999999999999999999\rtorture 0\rcall 1 2\rfrob\r\r",
      "shell-editing": "cpuz\u{7f}s\r\n\u{1b}[Acp\u{e9}us\roffline 1\u{3}exit\r",
    ]
    return typed.mapValues { [3] + Array($0.utf8) }
  }

  /// An MADT mixing local APIC and x2APIC entries, broadcast IDs among them.
  static func x2APICMADT() -> [UInt8] {
    var table = MADTFixture.start()
    MADTFixture.localAPIC(&table, uid: 0, id: 0)
    MADTFixture.ioAPIC(&table)
    MADTFixture.x2APIC(&table, id: 300, uid: 1)
    MADTFixture.x2APIC(&table, id: 0xFFFF_FFFF, uid: 2)
    MADTFixture.localAPIC(&table, uid: 3, id: 0xFF)
    return table.finished()
  }

  /// Physical memory from address 0 as the acpi_chain target reads it: the RSDP at 0, the
  /// root table at 64, then the MADT and the FADT it lists, each 16-byte aligned.
  static func memoryImage(xsdt: Bool) -> [UInt8] {
    let madt = MADTTests.fourCPUs()
    let fadt = ACPITests.fadt(length: 116, port: 0x608, flags: 1 << 8)
    let rootAt = 64
    let madtAt = 128
    let fadtAt = madtAt + (madt.count + 15) / 16 * 16
    let tables = [UInt64(madtAt), UInt64(fadtAt)]
    let rsdp =
      xsdt
      ? RSDPFixture.version2(rsdt: 0, xsdt: UInt64(rootAt))
      : RSDPFixture.version1(rsdt: UInt32(rootAt))
    let root =
      xsdt
      ? ACPITests.rootTable("XSDT", entrySize: 8, tables)
      : ACPITests.rootTable("RSDT", entrySize: 4, tables)
    var memory = [UInt8](repeating: 0, count: fadtAt + fadt.count)
    for (address, bytes) in [(0, rsdp), (rootAt, root), (madtAt, madt), (fadtAt, fadt)] {
      memory.replaceSubrange(address..<(address + bytes.count), with: bytes)
    }
    return memory
  }

  /// The command lines BootParametersTests.swift parses, read from its source: every
  /// `parse("...")` whose literal has no interpolation, named by a hash of its bytes.
  static func commandLines() -> [String: [UInt8]] {
    let path = SeedCorpus.root + "/Tests/HostTests/BootParametersTests.swift"
    guard let source = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
    var lines: [String: [UInt8]] = [:]
    for match in source.matches(of: #/parse\("((?:[^"\\]|\\.)*)"\)/#) {
      let literal = match.output.1
      guard !literal.contains("\\("), let bytes = unescaped(literal), !bytes.isEmpty else {
        continue
      }
      lines["line-" + SeedCorpus.hash(bytes)] = bytes
    }
    return lines
  }

  /// The bytes of a Swift string literal's body with its simple escapes resolved.
  static func unescaped(_ literal: Substring) -> [UInt8]? {
    var bytes: [UInt8] = []
    var escaping = false
    for byte in literal.utf8 {
      if escaping {
        let escapes: [UInt8: UInt8] = [
          UInt8(ascii: "t"): 9, UInt8(ascii: "n"): 10, UInt8(ascii: "r"): 13, UInt8(ascii: "0"): 0,
          UInt8(ascii: "\\"): UInt8(ascii: "\\"), UInt8(ascii: "\""): UInt8(ascii: "\""),
        ]
        guard let resolved = escapes[byte] else { return nil }
        bytes.append(resolved)
        escaping = false
      } else if byte == UInt8(ascii: "\\") {
        escaping = true
      } else {
        bytes.append(byte)
      }
    }
    return escaping ? nil : bytes
  }
}

/// A fuzz target's committed seed directory, compared with (or rewritten from) the fixtures.
struct SeedCorpus {
  /// The repository root: this file is Tests/HostTests/FuzzSeedTests.swift.
  static let root = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    .dropLast(3).joined(separator: "/")

  let target: String
  let seeds: [String: [UInt8]]

  /// The seed files that are missing, differ or are left over; with `LOCKSTEP_WRITE_SEEDS`
  /// set, the directory is rewritten first, so none are.
  func differences() throws -> [String] {
    let directory = Self.root + "/Fuzz/corpus/" + target
    let files = FileManager.default
    if ProcessInfo.processInfo.environment["LOCKSTEP_WRITE_SEEDS"] != nil {
      try? files.removeItem(atPath: directory)
      try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
      for (name, bytes) in seeds {
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + name))
      }
    }
    let present = Set((try? files.contentsOfDirectory(atPath: directory)) ?? [])
    var found = present.subtracting(seeds.keys).map { "\(target)/\($0) is not a fixture" }
    for (name, bytes) in seeds.sorted(by: { $0.key < $1.key }) {
      let stored = files.contents(atPath: directory + "/" + name).map { [UInt8]($0) }
      if stored != bytes { found.append("\(target)/\(name) differs from its fixture") }
    }
    return found.sorted()
  }

  /// FNV-1a of `bytes` as eight hex digits: a name that stays put when other seeds come or go.
  static func hash(_ bytes: [UInt8]) -> String {
    var value: UInt32 = 2_166_136_261
    for byte in bytes {
      value = (value ^ UInt32(byte)) &* 16_777_619
    }
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
  }
}

@Suite("FuzzSeeds")
struct FuzzSeedTests {
  @Test(arguments: FuzzSeeds.all.keys.sorted())
  func committedSeedsMatchFixtures(target: String) throws {
    let corpus = SeedCorpus(target: target, seeds: FuzzSeeds.all[target] ?? [:])
    #expect(try corpus.differences() == [])
  }

  @Test func commandLinesAreFoundInTheTests() {
    // Reading the test source must keep finding lines; an empty set would pass silently.
    #expect(FuzzSeeds.commandLines().count >= 10)
  }
}
