import Synchronization

/// Records, per CPU, how often a function ran there and how often with interrupts on.
final class ContextProbe {
  private let runs = CPUCounters()
  private let withInterruptsOn = CPUCounters()
  private let pair: UnsafeMutablePointer<UnsafeMutableRawPointer>

  init() {
    pair = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: 2)
    pair[0] = runs.info
    pair[1] = withInterruptsOn.info
  }

  deinit { pair.deallocate() }

  var info: UnsafeMutableRawPointer { UnsafeMutableRawPointer(pair) }

  /// The function to call with `info`.
  static let record: CallFunction = { info in
    let pair = info!.assumingMemoryBound(to: UnsafeMutableRawPointer.self)
    if CPUInstructions.interruptsEnabled { countOnThisCPU(pair[1]) }
    countOnThisCPU(pair[0])
  }

  /// Passes if exactly the CPUs in `cpus` ran once each, with interrupts off if asked.
  func expect(ranOn cpus: some Sequence<CPUIndex>, interruptsOff: Bool) -> TestResult {
    let expected = CPUSet(cpus)
    if case .fail(let why) = IPISuite.expectRanOnce(runs, on: expected) { return .fail(why) }
    for cpu in expected where interruptsOff && withInterruptsOn.value(cpu) != 0 {
      return .fail("CPU \(cpu.rawValue) ran the function with interrupts on")
    }
    return .pass
  }
}

/// Makes a CPU busy with interrupts off: a cross-call whose function spins until
/// released or until its time is up (so a failed test cannot wedge the CPU).
final class Spinner {
  private let target: CPUIndex
  private let control = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: 3)
  private let record: OwnedRecord

  /// control[0]: started, control[1]: released, control[2]: longest spin in ns.
  init(on target: CPUIndex, forAtMost nanoseconds: UInt64) {
    self.target = target
    control.initialize(to: Atomic<UInt64>(0))
    (control + 1).initialize(to: Atomic<UInt64>(0))
    (control + 2).initialize(to: Atomic<UInt64>(nanoseconds))
    record = OwnedRecord(Spinner.spin, UnsafeMutableRawPointer(control))
  }

  deinit {
    release()
    // The spin reads `control` until it returns; free it only once the record is back.
    guard waitUntil(milliseconds: 3000, { !record.pointer.pointee.isLocked }) else {
      KTAP.diagnostic("CPU \(target.rawValue) still spinning 3 s after release; its control block leaked")
      return
    }
    control.deinitialize(count: 3)
    control.deallocate()
  }

  /// Sends the spin and waits (1 s at most) until the target is in it.
  func start() -> Bool {
    do { try X86_64Platform.calls.callSingleAsync(on: target, record.pointer) } catch { return false }
    // Acquire pairs with the spinner's release: it is spinning with interrupts off.
    return waitUntil(milliseconds: 1000) { control[0].load(ordering: .acquiring) == 1 }
  }

  func release() { control[1].store(1, ordering: .releasing) }  // pairs with spin's acquire

  private static let spin: CallFunction = { info in
    let control = info!.assumingMemoryBound(to: Atomic<UInt64>.self)
    control[0].store(1, ordering: .releasing)  // pairs with the acquire in start()
    let end = Clock.nanoseconds() + control[2].load(ordering: .relaxed)
    while control[1].load(ordering: .acquiring) == 0 && Clock.nanoseconds() < end {
      CPUInstructions.pause()
    }
  }
}
