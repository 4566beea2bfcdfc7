import Synchronization

/// What a soak has done so far, per category, and its progress line.
///
/// Categories: `calls`, the cross-calls of the cross-call rounds (each handler run
/// counted once, so a call to many CPUs counts once per CPU, as `torture` counts);
/// `stops`, the operations of the stop rounds other than hotplug (every stop API, and
/// the waiting cross-call the stop torture also makes); `hotplug`, their `cpu_down` and
/// `cpu_up`. Each operation is counted once judged, whatever its documented outcome.
/// Errors are the torture's own: a call that ran on the wrong CPU, twice, or not at all,
/// a stop whose result disagrees with where its function ran, a refusal it cannot give.
/// An error of the stop rounds that belongs to no single operation (a stopper left busy
/// after a round, a leaked preemption count, operations stuck) counts under `stops`.
struct SoakTotals {
  var rounds = 0
  var calls = 0
  var callErrors = 0
  var stops = 0
  var stopErrors = 0
  var hotplug = 0
  var hotplugErrors = 0

  var operations: Int { calls + stops + hotplug }
  var errors: Int { callErrors + stopErrors + hotplugErrors }

  /// Adds a finished cross-call round: its handler runs, and its errors, counting a
  /// call issued that never ran as one.
  mutating func addCalls(_ state: TortureState) {
    let issued = state.issued.load(ordering: .relaxed)
    let executed = state.executed.load(ordering: .relaxed)
    calls += executed
    callErrors += state.errors.load(ordering: .relaxed) + (issued > executed ? issued - executed : 0)
  }

  /// Takes the stop rounds' counts from their tally, which holds every round so far.
  mutating func takeStops(from tally: StopTortureTally) {
    var (stopCount, stopFailures, hotplugCount, hotplugFailures) = (0, 0, 0, 0)
    for kind in StopTortureKind.allCases {
      let isHotplug = kind == .cpuDown || kind == .cpuUp
      let count = StopTortureOutcome.allCases.reduce(0) { $0 + tally.value(kind, $1) }
      let failures = tally.value(kind, .error)
      if isHotplug {
        hotplugCount += count
        hotplugFailures += failures
      } else {
        stopCount += count
        stopFailures += failures
      }
    }
    // The tally's errors include each operation's; what is left belongs to no operation.
    let unattributed = tally.errors.load(ordering: .relaxed) - stopFailures - hotplugFailures
    (stops, stopErrors) = (stopCount, stopFailures + max(0, unattributed))
    (hotplug, hotplugErrors) = (hotplugCount, hotplugFailures)
  }

  /// `soak: s=30 rounds=6 calls=... calls_err=0 stops=... stops_err=0 hotplug=...
  /// hotplug_err=0 ops=... errors=0 heap_kib=...`, after `label` (`soak` while it runs,
  /// `soak end` once). The harness parses these tokens (Tests/Harness/Kit/SoakProgress).
  func line(_ label: StaticString, seconds: UInt64) -> LogLine {
    var line = LogLine()
    line.append(label)
    return
      "\(line: line): s=\(seconds) rounds=\(rounds) calls=\(calls) calls_err=\(callErrors) stops=\(stops) stops_err=\(stopErrors) hotplug=\(hotplug) hotplug_err=\(hotplugErrors) ops=\(operations) errors=\(errors) heap_kib=\(KernelHeap.bytesInUse / 1024)"
  }
}
