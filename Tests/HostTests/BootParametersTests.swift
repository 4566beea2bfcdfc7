import LockstepKernel
import Testing

/// Keys as the kernel image adds them (Kernel/Init/BootFaultInjection.swift and
/// Tests/KernelTests/KernelTests.swift, which the host does not build), so that the
/// parser is tested with list, flag, integer and pair keys from outside Core.
private let imageKeys = [
  BootParameterKey("ktest", .list),
  BootParameterKey("bench", .flag),
  BootParameterKey("bench_boots", .integer),
  BootParameterKey("test_dead_ap", .integer, allowed: 1...(maxCPUs - 1)),
  BootParameterKey("test_slow_ap", .pair, allowed: 1...(maxCPUs - 1), allowedSecond: 0...60_000),
  BootParameterKey("test_early_ap_fault", .integer, allowed: 1...(maxCPUs - 1)),
]

/// Parses a command line given as text, with the image's keys.
private func parse(_ line: String) -> BootParameters {
  Array(line.utf8).withUnsafeBytes { BootParameters.parse($0, extraKeys: imageKeys) }
}

/// The UTF-8 bytes of `text`.
private func bytes(_ text: String) -> [UInt8] {
  Array(text.utf8)
}

@Suite("BootParameters")
struct BootParametersTests {
  @Test func emptyLine() {
    let p = parse("")
    #expect(!p.smpDisabled)
    #expect(p.maxCPUs == nil)
    #expect(p.nrCPUs == nil)
    #expect(p.list("ktest").isEmpty)
    #expect(p.diagnostics.isEmpty)
    #expect(!p.has("bench"))
    #expect(p.integer("maxcpus") == nil)
    #expect(parse("   \t\n ").diagnostics.isEmpty)
  }

  @Test func nosmp() {
    let p = parse("nosmp")
    #expect(p.smpDisabled)
    #expect(p.has("nosmp"))
    #expect(p.maxCPUs == nil)
    #expect(p.diagnostics.isEmpty)
  }

  @Test func maxcpusZeroDisablesSMP() {
    let p = parse("maxcpus=0")
    #expect(p.smpDisabled)
    #expect(p.maxCPUs == 0)
    #expect(p.diagnostics.isEmpty)
  }

  @Test func maxcpusAndNrCPUs() {
    let p = parse("maxcpus=2 nr_cpus=3")
    #expect(!p.smpDisabled)
    #expect(p.maxCPUs == 2)
    #expect(p.nrCPUs == 3)
    #expect(p.integer("maxcpus") == 2)
    #expect(p.integer("nr_cpus") == 3)
    #expect(p.diagnostics.isEmpty)
  }

  @Test func nrCPUsZeroIsOutOfRangeAndIgnored() {
    let p = parse("nr_cpus=0")
    #expect(p.nrCPUs == nil)
    #expect(p.integer("nr_cpus") == nil)
    #expect(p.diagnostics == [.outOfRange(name: bytes("nr_cpus"), value: 0)])
  }

  @Test func nrCPUsNegativeIsMalformed() {
    let p = parse("nr_cpus=-1")
    #expect(p.nrCPUs == nil)
    #expect(p.diagnostics == [.malformed(name: bytes("nr_cpus"), value: bytes("-1"))])
  }

  @Test(arguments: ["abc", "", "0x", "1a", "+2", "2k", "0xg", "1.5", "-0"])
  func malformedMaxcpusKeepsDefault(value: String) {
    let p = parse("maxcpus=\(value)")
    #expect(p.maxCPUs == nil)
    #expect(!p.smpDisabled, "a malformed maxcpus must not read as 0")
    let expected: BootParameterDiagnostic =
      .malformed(name: bytes("maxcpus"), value: bytes(value))
    #expect(p.diagnostics == [expected])
  }

  @Test func malformedLaterValueLeavesEarlierOne() {
    let p = parse("maxcpus=2 maxcpus=abc")
    #expect(p.maxCPUs == 2)
    #expect(p.diagnostics.count == 1)
  }

  @Test func missingValue() {
    let p = parse("maxcpus")
    #expect(p.maxCPUs == nil)
    #expect(p.diagnostics == [.missingValue(name: bytes("maxcpus"))])
    #expect(parse("ktest").diagnostics == [.missingValue(name: bytes("ktest"))])
  }

  @Test func flagWithValue() {
    let p = parse("nosmp=1 bench=")
    #expect(p.smpDisabled)
    #expect(p.has("bench"))
    #expect(
      p.diagnostics == [
        .unexpectedValue(name: bytes("nosmp")), .unexpectedValue(name: bytes("bench")),
      ])
  }

  @Test func hexValues() {
    let p = parse("maxcpus=0x10 nr_cpus=0XfF ap_timeout_ms=0x1")
    #expect(p.maxCPUs == 16)
    #expect(p.nrCPUs == 255)
    #expect(p.integer("ap_timeout_ms") == 1)
    #expect(p.diagnostics.isEmpty)
  }

  @Test func leadingZeroIsDecimal() {
    #expect(parse("maxcpus=010").maxCPUs == 10)
  }

  @Test func overflowIsMalformed() {
    let huge = "99999999999999999999"
    let p = parse("maxcpus=\(huge) nr_cpus=0x10000000000000000")
    #expect(p.maxCPUs == nil)
    #expect(p.nrCPUs == nil)
    #expect(
      p.diagnostics == [
        .malformed(name: bytes("maxcpus"), value: bytes(huge)),
        .malformed(name: bytes("nr_cpus"), value: bytes("0x10000000000000000")),
      ])
    #expect(parse("bench_boots=9223372036854775807").integer("bench_boots") == Int.max)
  }

  @Test func lastRepeatWins() {
    let p = parse("maxcpus=4 nr_cpus=2 maxcpus=1 nr_cpus=6 ktest=a ktest=b,c")
    #expect(p.maxCPUs == 1)
    #expect(p.nrCPUs == 6)
    #expect(p.list("ktest") == [bytes("b"), bytes("c")])
    #expect(!parse("maxcpus=0 maxcpus=3").smpDisabled)
  }

  @Test func unknownListedOnce() {
    let p = parse("console=ttyS0 quiet console=ttyS1 quiet nosmp")
    #expect(p.diagnostics == [.unknown(name: bytes("console")), .unknown(name: bytes("quiet"))])
    #expect(p.smpDisabled)
  }

  @Test func separators() {
    let p = parse("  maxcpus=2\t\tnosmp \n\n nr_cpus=3\r\nbench   ")
    #expect(p.maxCPUs == 2)
    #expect(p.nrCPUs == 3)
    #expect(p.smpDisabled)
    #expect(p.has("bench"))
    #expect(p.diagnostics.isEmpty)
  }

  @Test func nulEndsTheLine() {
    let line: [UInt8] = bytes("maxcpus=2") + [0] + bytes(" nosmp")
    let p = line.withUnsafeBytes { BootParameters.parse($0) }
    #expect(p.maxCPUs == 2)
    #expect(!p.smpDisabled)
  }

  @Test func dashesMatchUnderscores() {
    let p = parse("nr-cpus=2 ap-timeout-ms=50")
    #expect(p.nrCPUs == 2)
    #expect(p.integer("ap_timeout_ms") == 50)
  }

  @Test func ktestList() {
    let p = parse("ktest=boot,ipi")
    #expect(p.list("ktest") == [bytes("boot"), bytes("ipi")])
    #expect(BootParameters.equals(p.list("ktest")[0], "boot"))
    #expect(!BootParameters.equals(p.list("ktest")[0], "boo"))
    #expect(!BootParameters.equals(p.list("ktest")[1], "boot"))
    #expect(parse("ktest=").list("ktest").isEmpty)
    #expect(parse("ktest=").diagnostics.isEmpty)
    #expect(parse("ktest=,a,,b,").list("ktest") == [bytes("a"), bytes("b")])
  }

  @Test func recognisedIntegerKeys() {
    let p = parse("ap_timeout_ms=250 test_dead_ap=2 csd_timeout_ms=0x3e8 bench_boots=5 bench")
    #expect(p.integer("ap_timeout_ms") == 250)
    #expect(p.integer("test_dead_ap") == 2)
    #expect(p.integer("csd_timeout_ms") == 1000)
    #expect(p.integer("bench_boots") == 5)
    #expect(p.integer("bench") == nil, "a flag has no integer")
    #expect(p.integer("unknown_key") == nil)
    #expect(p.has("bench"))
    #expect(!p.has("ap_timeout_ms"), "has() is for flags")
    #expect(!p.has("nosmp"))
    #expect(p.diagnostics.isEmpty)
  }

  @Test func integerKeysAreValidated() {
    let p = parse("ap_timeout_ms=fast test_dead_ap=0 test_dead_ap=512 csd_timeout_ms=")
    #expect(p.integer("ap_timeout_ms") == nil)
    #expect(p.integer("test_dead_ap") == nil)
    #expect(p.integer("csd_timeout_ms") == nil)
    #expect(
      p.diagnostics == [
        .malformed(name: bytes("ap_timeout_ms"), value: bytes("fast")),
        .outOfRange(name: bytes("test_dead_ap"), value: 0),
        .outOfRange(name: bytes("test_dead_ap"), value: 512),
        .malformed(name: bytes("csd_timeout_ms"), value: []),
      ])
  }

  @Test func ktestIntegerIsNil() {
    #expect(parse("ktest=boot").integer("ktest") == nil)
  }

  static let limitCases: [(line: String, present: Int, possible: Int, bootOnline: Int)] = [
    ("", 4, 4, 4),
    ("", 1, 1, 1),
    ("nosmp", 4, 4, 1),
    ("nosmp nr_cpus=2", 4, 2, 1),
    ("maxcpus=0", 4, 4, 1),
    ("maxcpus=1", 4, 4, 1),
    ("maxcpus=2", 4, 4, 2),
    ("maxcpus=8", 4, 4, 4),
    ("nr_cpus=8", 4, 4, 4),
    ("nr_cpus=3", 4, 3, 3),
    ("nr_cpus=0", 4, 4, 4),
    ("maxcpus=2 nr_cpus=3", 4, 3, 2),
    ("maxcpus=3 nr_cpus=2", 4, 2, 2),
    ("maxcpus=abc", 4, 4, 4),
    ("nr_cpus=1 maxcpus=4", 8, 1, 1),
    ("maxcpus=300", 288, 288, 288),
  ]

  /// Every timeout refuses 0 and absurd values, keeping its default; the bounds
  /// themselves are accepted. `panic_on_ipistall=0` is the documented "never".
  @Test(arguments: [
    ("ap_timeout_ms", 1, 10_000), ("csd_timeout_ms", 1, 60_000), ("panic_on_ipistall", 0, 600_000),
    ("idle_poll_us", 0, 10_000),
  ])
  func timeoutBounds(key: String, lowest: Int, highest: Int) {
    for good in [lowest, highest] {
      let p = parse("\(key)=\(good)")
      #expect(p.diagnostics.isEmpty, "\(key)=\(good)")
    }
    var bad = [highest + 1, Int.max]
    if lowest > 0 { bad.append(lowest - 1) }
    for value in bad {
      let p = parse("\(key)=\(value)")
      #expect(p.diagnostics == [.outOfRange(name: bytes(key), value: value)], "\(key)=\(value)")
    }
    #expect(parse("\(key)=-1").diagnostics == [.malformed(name: bytes(key), value: bytes("-1"))])
    #expect(parse("\(key)=99999999999999999999").diagnostics.count == 1, "overflow is malformed")
  }

  @Test func keysOutsideTheKernelsOwnAreUnknownWithoutTheImage() {
    let p = Array("ktest=boot bench maxcpus=2".utf8).withUnsafeBytes { BootParameters.parse($0) }
    #expect(p.maxCPUs == 2)
    #expect(p.list("ktest").isEmpty && !p.has("bench"))
    #expect(p.diagnostics == [.unknown(name: bytes("ktest")), .unknown(name: bytes("bench"))])
  }

  @Test func slowAPPairParses() {
    let p = parse("test_slow_ap=3:250")
    #expect(p.diagnostics.isEmpty)
    #expect(p.pair("test_slow_ap")! == (3, 250))
    #expect(p.integer("test_slow_ap") == nil, "a pair is not an integer")
    #expect(parse("").pair("test_slow_ap") == nil)
  }

  @Test(arguments: ["3", "3:", ":250", "3:250:1", "x:1", "3:x", "3;250", "-3:250"])
  func slowAPMalformedPairs(value: String) {
    let p = parse("test_slow_ap=\(value)")
    #expect(p.pair("test_slow_ap") == nil)
    #expect(p.diagnostics == [.malformed(name: bytes("test_slow_ap"), value: bytes(value))])
  }

  @Test func slowAPPairRanges() {
    #expect(parse("test_slow_ap=0:10").diagnostics == [.outOfRange(name: bytes("test_slow_ap"), value: 0)])
    #expect(
      parse("test_slow_ap=1:60001").diagnostics == [.outOfRange(name: bytes("test_slow_ap"), value: 60001)])
    #expect(parse("test_slow_ap=1:0").pair("test_slow_ap")! == (1, 0))
    #expect(parse("test_early_ap_fault=0").diagnostics.count == 1, "the boot CPU cannot be the early AP")
  }

  @Test(arguments: limitCases)
  func limits(testCase: (line: String, present: Int, possible: Int, bootOnline: Int)) {
    let limits = parse(testCase.line).limits(presentCPUs: testCase.present)
    #expect(limits == CPULimits(possible: testCase.possible, bootOnline: testCase.bootOnline))
  }
}
