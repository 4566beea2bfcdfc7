// The kernel command-line keys Lockstep recognises, and the byte-level grammar of their
// names and integer values. `BootParameters` applies them.

/// A command-line key Lockstep recognises: this enum is the static list of them.
///
/// Names match as Linux's `parameq()` does: `-` and `_` are interchangeable.
enum BootParameterKey: Int, CaseIterable {
  /// `nosmp`: run on the boot CPU only. Linux: early_param("nosmp").
  case nosmp
  /// `bench`: run the in-kernel benchmarks.
  case bench
  /// `maxcpus=N`: CPUs brought online at boot; 0 disables SMP. Linux: setup_max_cpus.
  case maxcpus
  /// `nr_cpus=N`: hard limit on possible CPUs, N > 0; only lowers. Linux: nr_cpu_ids.
  case nrCPUs
  /// `ktest=a,b,c`: in-kernel test suites to run, in order.
  case ktest
  /// `ap_timeout_ms=N`: a bring-up attempt ends when no AP has come online for N ms.
  case apTimeoutMS
  /// `test_dead_ap=N`: test only; the AP of CPU index N (not the boot CPU) skips its start-up.
  case testDeadAP
  /// `test_slow_ap=N:MS`: test only; CPU N's AP waits MS ms before it tries to go online.
  case testSlowAP
  /// `test_early_ap_fault=N`: test only; CPU N's AP faults at its first Swift instruction.
  case testEarlyAPFault
  /// `csd_timeout_ms=N`: cross-call watchdog; a call unanswered this long is reported.
  case csdTimeoutMS
  /// `panic_on_ipistall=N`: a cross-call wait longer than N ms panics; 0 (the default)
  /// never does. Linux: the csdlock_debug `panic_on_ipistall` parameter.
  case panicOnIPIStall
  /// `bench_boots=N`: how many boots a benchmark run spans.
  case benchBoots
  /// `torture_ops=N`: cross-calls the `torture` suite makes in all, spread over the CPUs.
  case tortureOps
  /// `torture_seed=N`: seed of the `torture` suite's random choices (default: the TSC).
  case tortureSeed

  /// How a key takes its value.
  enum Kind {
    /// A bare word; `key=value` is an error.
    case flag
    /// `key=N`, N decimal or `0x` hex, validated when parsed.
    case integer
    /// `key=a,b,c`, a comma-separated list of names.
    case list
    /// `key=N:M`, two integers, each validated when parsed.
    case pair
  }

  /// The key as written on the command line.
  var name: StaticString {
    switch self {
    case .nosmp: "nosmp"
    case .bench: "bench"
    case .maxcpus: "maxcpus"
    case .nrCPUs: "nr_cpus"
    case .ktest: "ktest"
    case .apTimeoutMS: "ap_timeout_ms"
    case .testDeadAP: "test_dead_ap"
    case .testSlowAP: "test_slow_ap"
    case .testEarlyAPFault: "test_early_ap_fault"
    case .panicOnIPIStall: "panic_on_ipistall"
    case .csdTimeoutMS: "csd_timeout_ms"
    case .benchBoots: "bench_boots"
    case .tortureOps: "torture_ops"
    case .tortureSeed: "torture_seed"
    }
  }

  /// How this key takes its value.
  var kind: Kind {
    switch self {
    case .nosmp, .bench: .flag
    case .ktest: .list
    case .testSlowAP: .pair
    case .maxcpus, .nrCPUs, .apTimeoutMS, .testDeadAP, .testEarlyAPFault, .csdTimeoutMS,
      .panicOnIPIStall, .benchBoots, .tortureOps, .tortureSeed:
      .integer
    }
  }

  /// Whether a syntactically valid integer is allowed for this key (for a `pair`, its
  /// first number; `acceptsSecond` checks the other).
  ///
  /// Timeouts refuse 0 and absurd values: a zero bound turns a wait into a storm of
  /// reports or a boot that gives up on every AP, and a bound of days is a typo.
  /// - Parameter value: the parsed, non-negative value.
  /// - Returns: `false` if the value must be reported as out of range and ignored.
  func accepts(_ value: Int) -> Bool {
    switch self {
    // Linux ignores nr_cpus <= 0 (`if (nr_cpus > 0 && ...)`).
    case .nrCPUs: value > 0
    // The boot CPU runs this code; only an AP can be told to misbehave.
    case .testDeadAP, .testSlowAP, .testEarlyAPFault: value >= 1 && value < maxCPUs
    case .apTimeoutMS: (1...10_000).contains(value)
    case .csdTimeoutMS: (1...60_000).contains(value)
    // 0 means never, as in Linux.
    case .panicOnIPIStall: value <= 600_000
    default: true
    }
  }

  /// Whether the second number of a `pair` key is allowed.
  func acceptsSecond(_ value: Int) -> Bool {
    switch self {
    case .testSlowAP: value <= 60_000
    default: true
    }
  }

  /// The key whose name is `name`, treating `-` and `_` alike.
  ///
  /// - Parameter name: the bytes before `=` in a command-line token.
  /// - Returns: the key, or `nil` if it is not recognised.
  static func matching(_ name: UnsafeRawBufferPointer) -> BootParameterKey? {
    for key in allCases where key.name.withUTF8Buffer({ sameName(name, $0) }) {
      return key
    }
    return nil
  }

  /// Compares two parameter names byte by byte, `-` equal to `_` (Linux: parameq()).
  private static func sameName(
    _ given: UnsafeRawBufferPointer, _ known: UnsafeBufferPointer<UInt8>
  ) -> Bool {
    guard given.count == known.count else { return false }
    for index in 0..<given.count {
      let a = given[index] == UInt8(ascii: "-") ? UInt8(ascii: "_") : given[index]
      let b = known[index] == UInt8(ascii: "-") ? UInt8(ascii: "_") : known[index]
      if a != b {
        return false
      }
    }
    return true
  }

  /// Parses a non-negative integer: decimal digits, or `0x`/`0X` then hex digits.
  ///
  /// - Note: Linux's get_option() also takes a sign and reads a leading `0` as octal; here
  ///   a sign is malformed and `010` is ten, so a value means what it looks like.
  /// - Parameter bytes: the whole value; anything but digits (including nothing) fails.
  /// - Returns: the value, or `nil` if malformed or above `Int.max`.
  static func integer(_ bytes: UnsafeRawBufferPointer) -> Int? {
    var digits = bytes[...]
    var radix = 10
    if bytes.count >= 2, bytes[0] == UInt8(ascii: "0"),
      bytes[1] == UInt8(ascii: "x") || bytes[1] == UInt8(ascii: "X")
    {
      radix = 16
      digits = bytes[2...]
    }
    guard !digits.isEmpty else { return nil }
    var value = 0
    for byte in digits {
      guard let digit = digitValue(byte), digit < radix else { return nil }
      let (shifted, overflowA) = value.multipliedReportingOverflow(by: radix)
      let (sum, overflowB) = shifted.addingReportingOverflow(digit)
      guard !overflowA, !overflowB else { return nil }
      value = sum
    }
    return value
  }

  /// The value of one hex digit byte, or `nil` if the byte is not a hex digit.
  private static func digitValue(_ byte: UInt8) -> Int? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
    default: nil
    }
  }
}
