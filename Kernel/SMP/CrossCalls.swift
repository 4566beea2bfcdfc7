import Synchronization

/// Cross-CPU function calls with Linux kernel/smp.c semantics: the per-CPU call queues,
/// the records they carry, the interrupt handler that runs them, and the waits on them.
///
/// The public calls (`callSingle`, `callMany`, `onEachCPU`, ...) live in
/// CrossCallAPI.swift. Everything is allocated in `init`; sending, running and waiting
/// never allocate. A CPU that waits for its calls keeps serving its own queue, so two
/// CPUs that call each other and wait cannot deadlock, even with interrupts off.
public final class CrossCalls<Platform: SMPPlatform> {
  /// Possible CPUs; every per-CPU array has this many entries.
  public let cpuCount: Int
  /// Per-CPU queues, one cache line each.
  private let queues: UnsafeMutableRawPointer
  /// Per-CPU record for calls that do not wait (Linux: csd_data).
  let asyncRecords: UnsafeMutablePointer<CallRecord>
  /// Per sender, one record per target for calls to many CPUs (Linux: cfd_data).
  let manyRecords: UnsafeMutablePointer<CallRecord>
  /// The CSD watchdog's bound on one wait, in nanoseconds (`csd_timeout_ms=`).
  public var watchdogTimeout: UInt64
  /// A wait longer than this panics, in nanoseconds; 0 never (`panic_on_ipistall=`).
  public var panicAfter: UInt64
  /// Counters: interrupts requested for / handled by each CPU, and watchdog events.
  public let statistics: CrossCallStatistics
  private let warnedInterruptsOff = Atomic<Bool>(false)
  private let warnedOffline = Atomic<Bool>(false)
  /// Per CPU: how deep it is in `withInterruptsDisabledDeliberately` (see there).
  private let deliberateDepth: UnsafeMutablePointer<Atomic<Int>>

  private static var queueStride: Int { 64 }

  /// Sets up queues and records for `cpuCount` CPUs. Boot, before any call.
  public init(cpuCount: Int, watchdogTimeout: UInt64 = 1_000_000_000, panicAfter: UInt64 = 0) {
    precondition(cpuCount >= 1)
    self.cpuCount = cpuCount
    self.watchdogTimeout = watchdogTimeout
    self.panicAfter = panicAfter
    queues = UnsafeMutableRawPointer.allocate(byteCount: cpuCount * Self.queueStride, alignment: 64)
    for cpu in 0..<cpuCount {
      (queues + cpu * Self.queueStride).bindMemory(to: CallQueue.self, capacity: 1).initialize(
        to: CallQueue())
    }
    asyncRecords = Self.allocateRecords(cpuCount)
    manyRecords = Self.allocateRecords(cpuCount * cpuCount)
    statistics = CrossCallStatistics(cpuCount: cpuCount)
    deliberateDepth = .allocate(capacity: cpuCount)
    for cpu in 0..<cpuCount { (deliberateDepth + cpu).initialize(to: Atomic<Int>(0)) }
  }

  deinit {
    for cpu in 0..<cpuCount { _ = queue(CPUIndex(cpu)).pointee.takeAll() }
    queues.deallocate()
    asyncRecords.deinitialize(count: cpuCount)
    asyncRecords.deallocate()
    manyRecords.deinitialize(count: cpuCount * cpuCount)
    manyRecords.deallocate()
    deliberateDepth.deallocate()
  }

  private static func allocateRecords(_ count: Int) -> UnsafeMutablePointer<CallRecord> {
    let records = UnsafeMutablePointer<CallRecord>.allocate(capacity: count)
    for index in 0..<count { (records + index).initialize(to: CallRecord()) }
    return records
  }

  func queue(_ cpu: CPUIndex) -> UnsafeMutablePointer<CallQueue> {
    (queues + cpu.rawValue * Self.queueStride).assumingMemoryBound(to: CallQueue.self)
  }

  /// Runs the calls queued for the running CPU. Called by the platform's interrupt
  /// handler for the call vectors, interrupts off.
  /// Linux: generic_smp_call_function_single_interrupt()
  public func handleInterrupt() {
    statistics.interruptsHandled(on: Platform.currentCPU).pointee.wrappingAdd(1, ordering: .relaxed)
    flushQueue(warnIfOffline: true)
  }

  /// Runs every call queued for the running CPU, for a CPU about to go offline: the
  /// interrupts for them may never arrive. Interrupts off.
  /// Linux: flush_smp_call_function_queue(false) from the CPU_DYING notifier.
  public func flushQueueBeforeOffline() {
    flushQueue(warnIfOffline: false)
  }

  /// Takes the running CPU's whole queue and runs it in arrival order.
  func flushQueue(warnIfOffline: Bool) {
    if Platform.interruptsEnabled {
      Platform.log("smp: CPU \(Platform.currentCPU.rawValue) flushes its call queue with interrupts on")
    }
    let me = Platform.currentCPU
    var entry = queue(me).pointee.takeAll()
    if warnIfOffline, entry != nil, !Platform.isOnline(me) { reportOffline(me, entry) }
    while let record = entry {
      // Read everything we need first: once unlocked, the record may be reused or gone.
      entry = record.pointee.next
      let function = record.pointee.function
      let info = record.pointee.info
      let sender = record.pointee.sender
      function?(info)
      if CallFlags.unlock(record) && sender >= 0 {
        Platform.sendCallIPI(to: CPUIndex(Int(sender)))  // wake the napping sender
      }
    }
  }

  /// Linux: "IPI on offline CPU" and each function sent to it, once per boot.
  private func reportOffline(_ me: CPUIndex, _ first: UnsafeMutablePointer<CallRecord>?) {
    guard !warnedOffline.exchange(true, ordering: .relaxed) else { return }
    Platform.log("smp: call interrupt on offline CPU \(me.rawValue)")
    var entry = first
    while let record = entry {
      Platform.log(
        "smp:   call to \(hex: functionAddress(record.pointee.function)) sent to offline CPU \(me.rawValue)")
      entry = record.pointee.next
    }
  }

  /// Queues `record` (locked, filled) on `target`, interrupting it only if its queue was
  /// empty. Returns whether an interrupt was sent.
  @discardableResult
  func enqueue(_ record: UnsafeMutablePointer<CallRecord>, on target: CPUIndex, sendInterrupt: Bool = true)
    -> Bool
  {
    record.pointee.sender = Int32(Platform.currentCPU.rawValue)
    record.pointee.target = Int32(target.rawValue)
    guard queue(target).pointee.push(record) else { return false }
    statistics.interruptsRequested(for: target).pointee.wrappingAdd(1, ordering: .relaxed)
    if sendInterrupt { Platform.sendCallIPI(to: target) }
    return true
  }

  /// Warns once that a call which may wait was made with interrupts off (Linux:
  /// WARN_ON_ONCE(cpu_online(this_cpu) && irqs_disabled())). Lockstep's waits serve
  /// their own queue, which removes the classic deadlock, but the warning stays: such a
  /// caller still cannot take the interrupts of anything else it waits for. Calls made
  /// inside `withInterruptsDisabledDeliberately` neither warn nor use up the warning.
  func warnIfInterruptsOff() {
    let me = Platform.currentCPU
    guard !Platform.interruptsEnabled, Platform.isOnline(me) else { return }
    // Relaxed: only this CPU writes its own depth, and it cannot change under us.
    if me.rawValue < cpuCount, deliberateDepth[me.rawValue].load(ordering: .relaxed) > 0 { return }
    guard !warnedInterruptsOff.exchange(true, ordering: .relaxed) else { return }
    Platform.log("smp: CPU \(me.rawValue) makes a cross-CPU call with interrupts disabled (deadlock risk)")
  }

  /// Runs `body` on the running CPU with interrupts disabled, for a caller that makes
  /// waiting calls with interrupts off on purpose (a test of exactly that): those calls
  /// do not warn, so the once-per-boot warning stays for real misuse. Restores
  /// interrupts as they were; nests. Scoped to the running CPU (no preemption moves the
  /// caller); the functions this CPU serves from its own queue while `body` waits are
  /// inside the scope too. Thread context.
  /// - Note: Lockstep's addition; Linux has no way to excuse a caller from the warning.
  public func withInterruptsDisabledDeliberately<Result>(_ body: () -> Result) -> Result {
    let state = Platform.saveAndDisableInterrupts()
    let depth = deliberateDepth + Platform.currentCPU.rawValue
    // Relaxed: the depth is read only by this CPU (warnIfInterruptsOff), in program order.
    depth.pointee.wrappingAdd(1, ordering: .relaxed)
    let result = body()
    depth.pointee.wrappingSubtract(1, ordering: .relaxed)
    Platform.restoreInterrupts(state)
    return result
  }
}

/// The address of a call's function, for reports (resolve with addr2line on the image).
/// A C function pointer is one machine word; nothing here touches memory.
func functionAddress(_ function: CallFunction?) -> UInt64 {
  guard let function else { return 0 }
  return UInt64(unsafeBitCast(function, to: UInt.self))
}
