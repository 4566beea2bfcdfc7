// Command-line keys: what a key is (name, how it takes a value, which values it allows),
// the keys the kernel itself reads, and the byte-level grammar of names and integers.
// `BootParameters` applies them. Layers above Core add keys of their own (the test-only
// fault injections, the test runner's `ktest=`); nothing here names those.

/// One command-line key Lockstep recognises.
///
/// Names match as Linux's `parameq()` does: `-` and `_` are interchangeable.
public struct BootParameterKey: Sendable {
  /// How a key takes its value.
  public enum Kind: Sendable {
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
  public let name: StaticString
  /// How this key takes its value.
  public let kind: Kind
  /// The values an `integer` key (or the first number of a `pair`) allows; others are
  /// reported out of range and ignored.
  public let allowed: ClosedRange<Int>
  /// The values the second number of a `pair` allows.
  public let allowedSecond: ClosedRange<Int>

  /// A key named `name` taking its value as `kind` says, within `allowed` (and, for a
  /// pair, `allowedSecond`).
  public init(
    _ name: StaticString, _ kind: Kind, allowed: ClosedRange<Int> = 0...Int.max,
    allowedSecond: ClosedRange<Int> = 0...Int.max
  ) {
    self.name = name
    self.kind = kind
    self.allowed = allowed
    self.allowedSecond = allowedSecond
  }

  // The kernel's own keys. Timeouts refuse 0 and absurd values: a zero bound turns a
  // wait into a storm of reports or a boot that gives up on every AP, and a bound of
  // days is a typo.

  /// `nosmp`: run on the boot CPU only. Linux: early_param("nosmp").
  public static var nosmp: BootParameterKey { BootParameterKey("nosmp", .flag) }
  /// `maxcpus=N`: CPUs brought online at boot; 0 disables SMP. Linux: setup_max_cpus.
  public static var maxcpus: BootParameterKey { BootParameterKey("maxcpus", .integer) }
  /// `nr_cpus=N`: hard limit on possible CPUs, N > 0; only lowers. Linux: nr_cpu_ids
  /// (Linux ignores nr_cpus <= 0).
  public static var nrCPUs: BootParameterKey { BootParameterKey("nr_cpus", .integer, allowed: 1...Int.max) }
  /// `ap_timeout_ms=N`: a bring-up attempt ends when no AP has come online for N ms.
  public static var apTimeoutMS: BootParameterKey {
    BootParameterKey("ap_timeout_ms", .integer, allowed: 1...10_000)
  }
  /// `csd_timeout_ms=N`: cross-call watchdog; a call unanswered this long is reported.
  public static var csdTimeoutMS: BootParameterKey {
    BootParameterKey("csd_timeout_ms", .integer, allowed: 1...60_000)
  }
  /// `panic_on_ipistall=N`: a cross-call wait longer than N ms panics; 0 (the default)
  /// never does. Linux: the csdlock_debug `panic_on_ipistall` parameter.
  public static var panicOnIPIStall: BootParameterKey {
    BootParameterKey("panic_on_ipistall", .integer, allowed: 0...600_000)
  }

  /// `idle_poll_us=N`: the longest an idle CPU polls for work before it halts; 0 (the
  /// default) never polls. Linux: the haltpoll governor's guest_halt_poll_ns.
  public static var idlePollUS: BootParameterKey {
    BootParameterKey("idle_poll_us", .integer, allowed: 0...10_000)
  }

  /// `stop_timeout_ms=N`: a multi-CPU stop (stop_machine) whose CPUs stay in one state
  /// longer than N ms panics, naming the CPUs it waited for (reported first at a tenth
  /// of N, at most 1 s). Default 30 000.
  public static var stopTimeoutMS: BootParameterKey {
    BootParameterKey("stop_timeout_ms", .integer, allowed: 1...600_000)
  }

  /// `stop_retries=N`: attempts `smp_send_stop` and the crash stop make, 1-10; the
  /// first sends the stop vector, later ones NMI. Default 2 (as the Linux RFC).
  public static var stopRetries: BootParameterKey {
    BootParameterKey("stop_retries", .integer, allowed: 1...10)
  }

  /// `stop_timeout_us=N`: how long each attempt of `smp_send_stop` waits for the CPUs'
  /// acknowledgements, 1 us to 10 s. Default 10 000 (docs/send-stop.md says why).
  public static var stopTimeoutUS: BootParameterKey {
    BootParameterKey("stop_timeout_us", .integer, allowed: 1...10_000_000)
  }

  /// `stop_wait=forever`: the last attempt of `smp_send_stop` waits without bound
  /// (reporting every second the CPUs it still waits for). Any other value is refused.
  public static var stopWait: BootParameterKey { BootParameterKey("stop_wait", .list) }

  /// Every key the kernel itself reads.
  public static var kernel: [BootParameterKey] {
    [
      .nosmp, .maxcpus, .nrCPUs, .apTimeoutMS, .csdTimeoutMS, .panicOnIPIStall, .idlePollUS, .stopTimeoutMS,
      .stopRetries, .stopTimeoutUS, .stopWait,
    ]
  }

  /// Whether this key is called `name` (`-` and `_` alike).
  func matches(_ name: UnsafeRawBufferPointer) -> Bool {
    self.name.withUTF8Buffer { Self.sameName(name, $0) }
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
