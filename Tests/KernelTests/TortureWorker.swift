import Synchronization

/// One thread's share of the torture: `operationsPerWorker` random calls, then a wait
/// for its calls still in flight. Runs as a kernel thread (`torture/N`), interrupts on.
struct TortureWorker {
  private let state: TortureState
  private let me: CPUIndex
  private let online: CPUSet
  private var random: UInt64
  /// Probes and records for calls that do not wait: they must outlive the call.
  private let slots = 4
  private let asyncRecords: UnsafeMutablePointer<CallRecord>
  private let asyncProbes: UnsafeMutablePointer<TortureProbe>
  private let noWaitProbes: UnsafeMutablePointer<TortureProbe>
  private var nextNoWait = 0

  static let entry: CallFunction = { info in
    let assignment = TortureState.from(info)
    var worker = TortureWorker(assignment.state, number: assignment.number)
    let deadline = assignment.state.deadline
    for step in 0..<assignment.state.operationsPerWorker {
      // The clock every 64 calls: reading it is dear under TCG, and 64 calls take well under 1 ms.
      if let deadline, step & 63 == 0, Clock.nanoseconds() > deadline { break }
      worker.step()
    }
    worker.finish()
  }

  private init(_ state: TortureState, number: Int) {
    self.state = state
    me = X86_64Platform.currentCPU  // threads are bound: it stays the CPU we run on
    online = CPUs.online
    random = state.seed ^ (UInt64(number + 1) &* 0x9E37_79B9_7F4A_7C15)
    asyncRecords = .allocate(capacity: slots)
    asyncProbes = .allocate(capacity: slots)
    noWaitProbes = .allocate(capacity: slots)
    for slot in 0..<slots {
      (asyncProbes + slot).initialize(to: TortureProbe(target: -1, state: state))
      (noWaitProbes + slot).initialize(to: TortureProbe(target: -1, state: state))
      (asyncRecords + slot).initialize(
        to: CallRecord(function: TortureHandlers.one, info: UnsafeMutableRawPointer(asyncProbes + slot)))
    }
  }

  private mutating func next() -> UInt64 {
    random ^= random << 13
    random ^= random >> 7
    random ^= random << 17
    return random
  }

  private mutating func randomOnlineCPU() -> CPUIndex {
    let index = Int(next() % UInt64(online.count))
    return online.dropFirst(index).first { _ in true }!
  }

  private mutating func randomMask() -> CPUSet {
    let bits = next()
    return CPUSet(online.filter { $0.rawValue >= 64 || bits & (1 << UInt64($0.rawValue)) != 0 })
  }

  private mutating func step() {
    switch next() % 6 {
    case 0: singleWaiting(to: randomOnlineCPU())
    case 1: singleNotWaiting(to: randomOnlineCPU())
    case 2: async(to: randomOnlineCPU())
    case 3: many(randomMask(), includingSelf: false)
    case 4: many(online, includingSelf: true)
    default: any(of: randomMask())
    }
  }

  private func singleWaiting(to target: CPUIndex) {
    singleVia(target) { (probe) throws(CrossCallError) in
      try X86_64Platform.calls.callSingle(on: target, TortureHandlers.one, probe, wait: true)
    }
  }

  private mutating func singleNotWaiting(to target: CPUIndex) {
    let probe = noWaitProbes + nextNoWait
    nextNoWait = (nextNoWait + 1) % slots
    guard awaitOut(probe) else { return }
    probe.pointee.target = target.rawValue
    probe.pointee.marks.store(0, ordering: .relaxed)
    send(probe) { () throws(CrossCallError) in
      try X86_64Platform.calls.callSingle(
        on: target, TortureHandlers.one, UnsafeMutableRawPointer(probe), wait: false)
    }
  }

  private mutating func async(to target: CPUIndex) {
    let slot = Int(next() % UInt64(slots))
    let record = asyncRecords + slot
    let probe = asyncProbes + slot
    guard !record.pointee.isLocked else {
      state.skipped.wrappingAdd(1, ordering: .relaxed)  // in flight: the API would refuse it
      return
    }
    if probe.pointee.target >= 0 { expectOut(probe) }
    probe.pointee.target = target.rawValue
    probe.pointee.marks.store(0, ordering: .relaxed)
    send(probe) { () throws(CrossCallError) in try X86_64Platform.calls.callSingleAsync(on: target, record) }
  }

  private func many(_ mask: CPUSet, includingSelf: Bool) {
    let count = CPUs.possibleCount
    withUnsafeTemporaryAllocation(of: TortureProbe.self, capacity: count) { buffer in
      let probes = buffer.baseAddress!
      for index in 0..<count {
        let cpu = CPUIndex(index)
        let targeted = mask.contains(cpu) && online.contains(cpu) && (includingSelf || cpu != me)
        (probes + index).initialize(to: TortureProbe(target: targeted ? index : -1, state: state))
        if targeted {
          probes[index].marks.store(TortureProbe.markIn, ordering: .relaxed)
          state.issued.wrappingAdd(1, ordering: .relaxed)
        }
      }
      if includingSelf {
        X86_64Platform.calls.onEachCPU(TortureHandlers.perCPU, UnsafeMutableRawPointer(probes), wait: true)
      } else {
        X86_64Platform.calls.callMany(
          mask, TortureHandlers.perCPU, UnsafeMutableRawPointer(probes), wait: true)
      }
      for index in 0..<count where probes[index].target >= 0 { expectOut(probes + index) }
      probes.deinitialize(count: count)
    }
  }

  private func any(of mask: CPUSet) {
    let expected = mask.contains(me) ? me : mask.intersection(online).first
    guard let expected else {
      do {
        try X86_64Platform.calls.callAny(of: mask, TortureHandlers.one, nil, wait: true)
        state.fail("callAny accepted a mask with no online CPU")
      } catch {}
      return
    }
    singleVia(expected) { (probe) throws(CrossCallError) in
      try X86_64Platform.calls.callAny(of: mask, TortureHandlers.one, probe, wait: true)
    }
  }

  private func singleVia(
    _ expected: CPUIndex, _ call: (UnsafeMutableRawPointer) throws(CrossCallError) -> Void
  ) {
    withUnsafeTemporaryAllocation(of: TortureProbe.self, capacity: 1) { buffer in
      let probe = buffer.baseAddress!
      probe.initialize(to: TortureProbe(target: expected.rawValue, state: state))
      send(probe) { () throws(CrossCallError) in try call(UnsafeMutableRawPointer(probe)) }
      expectOut(probe)
      probe.deinitialize(count: 1)
    }
  }

  /// Marks the probe "in", counts the call, and makes it; a refusal is an error here
  /// (every target is online and no CPU goes offline during the torture).
  private func send(_ probe: UnsafeMutablePointer<TortureProbe>, _ call: () throws(CrossCallError) -> Void) {
    probe.pointee.marks.store(TortureProbe.markIn, ordering: .relaxed)
    state.issued.wrappingAdd(1, ordering: .relaxed)
    do { try call() } catch {
      state.fail("CPU \(me.rawValue): a call to CPU \(probe.pointee.target) was refused")
      state.issued.wrappingSubtract(1, ordering: .relaxed)
    }
  }

  private func expectOut(_ probe: UnsafeMutablePointer<TortureProbe>) {
    if probe.pointee.marks.load(ordering: .relaxed) & TortureProbe.markOut == 0 {
      state.fail(
        "CPU \(me.rawValue): call to CPU \(probe.pointee.target) returned before its handler's out-mark was visible"
      )
    }
  }

  /// Waits (bounded) for a no-wait call's handler to finish before the probe is reused.
  private func awaitOut(_ probe: UnsafeMutablePointer<TortureProbe>) -> Bool {
    guard probe.pointee.target >= 0 else { return true }
    let done = waitUntil(milliseconds: 5000) {
      probe.pointee.marks.load(ordering: .relaxed) & TortureProbe.markOut != 0
    }
    if !done {
      state.fail("CPU \(me.rawValue): a no-wait call to CPU \(probe.pointee.target) did not run within 5 s")
    }
    return done
  }

  /// Waits for this thread's calls still in flight, then frees the slots.
  private func finish() {
    for slot in 0..<slots {
      _ = awaitOut(noWaitProbes + slot)
      if !waitUntil(milliseconds: 5000, { !asyncRecords[slot].isLocked }) {
        state.fail("CPU \(me.rawValue): an async call did not complete within 5 s")
      }
    }
    asyncRecords.deinitialize(count: slots)
    asyncProbes.deinitialize(count: slots)
    noWaitProbes.deinitialize(count: slots)
    asyncRecords.deallocate()
    asyncProbes.deallocate()
    noWaitProbes.deallocate()
  }
}
