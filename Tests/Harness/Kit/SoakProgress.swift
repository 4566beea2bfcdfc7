// The `soak` suite's counter lines, as the kernel prints them (Tests/KernelTests/SoakTotals):
//   `    # soak: s=30 rounds=6 calls=... calls_err=0 stops=... stops_err=0 hotplug=...
//    hotplug_err=0 ops=... errors=0 heap_kib=711`
// every ten seconds or so, and once more as `    # soak end: ...` when the soak is over.

/// One counter line of the `soak` suite.
public struct SoakProgress: Equatable, Sendable {
  /// Seconds since the soak began.
  public var seconds: Int
  /// Rounds begun.
  public var rounds: Int
  /// Cross-calls run in the cross-call rounds, and their errors.
  public var calls: Int
  public var callErrors: Int
  /// Stop operations (and the stop torture's cross-calls) judged, and their errors.
  public var stops: Int
  public var stopErrors: Int
  /// `cpu_down` and `cpu_up` operations judged, and their errors.
  public var hotplug: Int
  public var hotplugErrors: Int
  /// All operations and all errors, as the kernel summed them.
  public var operations: Int
  public var errors: Int
  /// Kernel heap in use, KiB.
  public var heapKiB: Int
  /// Whether this is the `soak end` line.
  public var isFinal: Bool

  /// Creates a line's counters.
  public init(
    seconds: Int, rounds: Int, calls: Int, callErrors: Int, stops: Int, stopErrors: Int,
    hotplug: Int, hotplugErrors: Int, operations: Int, errors: Int, heapKiB: Int, isFinal: Bool
  ) {
    self.seconds = seconds
    self.rounds = rounds
    self.calls = calls
    self.callErrors = callErrors
    self.stops = stops
    self.stopErrors = stopErrors
    self.hotplug = hotplug
    self.hotplugErrors = hotplugErrors
    self.operations = operations
    self.errors = errors
    self.heapKiB = heapKiB
    self.isFinal = isFinal
  }

  private static let progressPrefix = "    # soak: "
  private static let finalPrefix = "    # soak end: "
  private static let keys = [
    "s", "rounds", "calls", "calls_err", "stops", "stops_err", "hotplug", "hotplug_err", "ops",
    "errors", "heap_kib",
  ]

  /// Parses one serial line; nil unless it is a complete counter line. The soak's opening
  /// line (`soak: 60 s on 4 CPUs, ...`) is not one: it has no `key=value` tokens.
  public static func parse(_ line: Substring) -> SoakProgress? {
    let isFinal = line.hasPrefix(finalPrefix)
    guard isFinal || line.hasPrefix(progressPrefix) else { return nil }
    let body = line.dropFirst(isFinal ? finalPrefix.count : progressPrefix.count)
    var values: [String: Int] = [:]
    for token in body.split(separator: " ") {
      let parts = token.split(separator: "=", omittingEmptySubsequences: false)
      guard parts.count == 2, let value = Int(parts[1]), value >= 0 else { return nil }
      values[String(parts[0])] = value
    }
    guard keys.allSatisfy({ values[$0] != nil }) else { return nil }
    return SoakProgress(
      seconds: values["s"]!, rounds: values["rounds"]!, calls: values["calls"]!,
      callErrors: values["calls_err"]!, stops: values["stops"]!, stopErrors: values["stops_err"]!,
      hotplug: values["hotplug"]!, hotplugErrors: values["hotplug_err"]!,
      operations: values["ops"]!, errors: values["errors"]!, heapKiB: values["heap_kib"]!,
      isFinal: isFinal)
  }

  /// Operations a second over the soak so far; 0 before the first second.
  public var operationsPerSecond: Int { seconds > 0 ? operations / seconds : 0 }

  /// What the harness prints for it: `s=30 ops=1234567 (41152/s) errors=0: calls 1230000,
  /// stops 3567, hotplug 1000; heap 711 KiB`.
  public var summary: String {
    "s=\(seconds) ops=\(operations) (\(operationsPerSecond)/s) errors=\(errors): calls \(calls), "
      + "stops \(stops), hotplug \(hotplug); \(rounds) rounds, heap \(heapKiB) KiB"
  }
}

extension SerialLog {
  /// The soak's counter lines, in order.
  public var soakProgress: [SoakProgress] { lines.compactMap(SoakProgress.parse) }
}
