import Synchronization

/// `ktest=torture`: every online CPU issues a random mix of all the cross-calls at
/// random targets, after Linux's kernel/scftorture.c.
///
/// Each call carries a probe. The caller sets the probe's "in" mark (relaxed) before
/// sending; the handler checks it runs on the probe's CPU and sees "in", then sets "out"
/// (relaxed); a waiting caller checks "out" when the call returns. Relaxed marks make
/// the protocol's own ordering (queue push/take, record unlock) the thing under test.
/// Counters of errors must end at 0 and executions must equal calls issued.
/// `torture_ops=N` (default 100000) calls in all; `torture_seed=S` (default: the TSC).
enum TortureSuite {
  static let suite = KernelTestSuite(
    name: "torture", cases: [KernelTestCase(name: "random_calls_from_every_cpu", run: run)])

  nonisolated(unsafe) static var parameters: BootParameters? = nil

  static func run() -> TestResult {
    let online = CPUs.online
    let total = parameters?.integer("torture_ops") ?? 100_000
    let seed = UInt64(parameters?.integer("torture_seed") ?? Int(CPUInstructions.readTSC() & 0xFFFF_FFFF))
    let state = TortureState(operationsPerCPU: max(1, total / online.count), seed: seed)
    KTAP.diagnostic(
      "seed \(seed) (torture_seed=\(seed) repeats it), \(total) operations on \(online.count) CPUs")
    let start = Clock.nanoseconds()
    for cpu in online where cpu != X86_64Platform.currentCPU {
      guard Idle.post(TortureWorker.entry, state.info, to: cpu) else {
        return .fail("could not start CPU \(cpu.rawValue)")
      }
    }
    TortureWorker.entry(state.info)
    guard waitUntil(milliseconds: 300_000, { state.finished.load(ordering: .acquiring) == online.count })
    else {
      return .fail("\(state.finished.load(ordering: .relaxed)) of \(online.count) CPUs finished within 300 s")
    }
    return state.verdict(elapsed: Clock.nanoseconds() - start)
  }
}

/// What all torture CPUs share. Counters are relaxed except `finished` (acquire/release).
final class TortureState {
  let operationsPerCPU: Int
  let seed: UInt64
  let issued = Atomic<Int>(0)
  let executed = Atomic<Int>(0)
  let errors = Atomic<Int>(0)
  let skipped = Atomic<Int>(0)
  let finished = Atomic<Int>(0)

  init(operationsPerCPU: Int, seed: UInt64) {
    self.operationsPerCPU = operationsPerCPU
    self.seed = seed
  }

  var info: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

  static func from(_ info: UnsafeMutableRawPointer?) -> TortureState {
    Unmanaged<TortureState>.fromOpaque(info!).takeUnretainedValue()
  }

  /// Counts an error and says what it was (the first few only, to keep the log short).
  func fail(_ line: LogLine) {
    if errors.wrappingAdd(1, ordering: .relaxed).newValue <= 5 { KTAP.diagnostic("torture: \(line: line)") }
  }

  func verdict(elapsed: UInt64) -> TestResult {
    let issued = issued.load(ordering: .relaxed)
    let executed = executed.load(ordering: .relaxed)
    let errors = errors.load(ordering: .relaxed)
    let perSecond = elapsed > 0 ? UInt64(executed) * 1_000_000_000 / elapsed : 0
    KTAP.diagnostic(
      "\(issued) calls issued, \(executed) run, \(errors) errors, \(skipped.load(ordering: .relaxed)) async skips (record busy), \(elapsed / 1_000_000) ms, \(perSecond) calls/s"
    )
    if errors != 0 { return .fail("\(errors) errors (seed \(seed))") }
    return issued == executed ? .pass : .fail("\(issued) calls issued but \(executed) ran (seed \(seed))")
  }
}

/// One call's marks. `target` is the CPU that must run it; -1 when not expected to.
struct TortureProbe: ~Copyable {
  var target: Int
  let marks = Atomic<Int>(0)  // bit 0: in (caller), bit 1: out (handler)
  unowned(unsafe) let state: TortureState

  init(target: Int, state: TortureState) {
    self.target = target
    self.state = state
  }

  static let markIn = 1
  static let markOut = 2
}

/// The handlers: one probe, or an array of probes indexed by CPU number.
enum TortureHandlers {
  static let one: CallFunction = { info in
    check(info!.assumingMemoryBound(to: TortureProbe.self))
  }

  static let perCPU: CallFunction = { info in
    let probes = info!.assumingMemoryBound(to: TortureProbe.self)
    check(probes + PerCPU.currentCPU.rawValue)
  }

  private static func check(_ probe: UnsafeMutablePointer<TortureProbe>) {
    let state = probe.pointee.state
    let me = PerCPU.currentCPU.rawValue
    if probe.pointee.target != me {
      state.fail("call for CPU \(probe.pointee.target) ran on CPU \(me)")
    }
    if probe.pointee.marks.load(ordering: .relaxed) & TortureProbe.markIn == 0 {
      state.fail("CPU \(me) ran a call before its caller's in-mark was visible")
    }
    probe.pointee.marks.wrappingAdd(TortureProbe.markOut, ordering: .relaxed)
    state.executed.wrappingAdd(1, ordering: .relaxed)
  }
}
