import Synchronization

/// The kernel log: whole lines, never interleaved across CPUs, usable from NMI and panic
/// context, and never making a CPU wait for the UART while another prints.
///
/// Modelled on Linux's printk: a writer copies its line into the next record of a
/// lock-free ring and leaves; whichever CPU wins the printer role drains committed
/// records to the serial port, one whole record at a time, in reservation order. A
/// spinlock around the UART was tried first and failed the `console` suite at 64 vCPUs:
/// on two host cores a printing vCPU loses its host CPU to the vCPUs spinning for the
/// lock, so lines took seconds and the lock had to be taken over mid-line.
///
/// Record states (per slot, for the record with ticket t = lap * slots + slot):
/// `2 * lap` free for ticket t; `2 * lap + 1` committed, waiting to be printed.
/// Zeroed storage is therefore a ring whose every slot is free for lap 0.
enum Console {
  private static let slots = 1024
  private static let slotSize = 256
  private static let textOffset = 16

  /// Next ticket to hand to a writer.
  private static let head = Atomic<UInt64>(0)
  /// Next ticket to print; written only by the printer.
  private static let tail = Atomic<UInt64>(0)
  /// CPU index + 1 of the CPU printing, 0 when none.
  private static let printer = Atomic<Int>(0)
  /// CPU index + 1 of a CPU writing a panic report: it takes printing over quickly.
  private static let urgentCPU = Atomic<Int>(0)
  /// Records whose writer was too slow to commit (stopped mid-write) and were skipped.
  static let skippedCount = Atomic<Int>(0)
  /// Times the printer role was taken from a CPU that held it too long.
  static let takeoverCount = Atomic<Int>(0)

  private static let takeoverAfterNanoseconds: UInt64 = 1_000_000_000
  private static let urgentTakeoverAfterNanoseconds: UInt64 = 20_000_000
  private static let skipAfterNanoseconds: UInt64 = 100_000_000

  /// Appends `line` to the log and prints whatever is pending if no other CPU is.
  /// Any context, including NMI and panic; never allocates.
  static func write(_ line: borrowing LogLine) {
    let me = ownerID()
    if me != unknownCPU && printer.load(ordering: .relaxed) == me {
      // Nested inside this CPU's own printing (an NMI or a fault): the records behind
      // us cannot move until we return, so write straight to the UART.
      line.withBytes { Serial.write($0) }
      Serial.send(0x0A)
      return
    }
    let ticket = head.wrappingAdd(1, ordering: .relaxed).oldValue
    let record = slot(ticket)
    let lap = ticket / UInt64(slots)
    waitUntilFree(record, lap: lap, me: me)
    line.withBytes { bytes in
      record.storeBytes(of: UInt64(bytes.count), toByteOffset: 8, as: UInt64.self)
      (record + textOffset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }
    // Publish the text with the state; pairs with the acquire in printPending(). A
    // failed exchange means the printer skipped us as stuck: the line is lost.
    let committed = state(record).pointee.compareExchange(
      expected: 2 * lap, desired: 2 * lap + 1, ordering: .sequentiallyConsistent)
    if !committed.exchanged { skippedCount.wrappingAdd(1, ordering: .relaxed) }
    drain(me: me)
  }

  /// Prints everything pending, taking the printer role over (after a short bound) from
  /// a CPU that does not let go. Call before leaving the machine.
  static func flush() {
    let me = ownerID()
    let start = Clock.nanoseconds()
    while tail.load(ordering: .relaxed) < head.load(ordering: .relaxed) {
      if !drain(me: me) && !takeOver(me: me, since: start) { CPUInstructions.pause() }
      if Clock.nanoseconds() &- start > takeoverAfterNanoseconds {
        // Straight to the UART: the ring is what is stuck.
        var notice: LogLine = "console: "
        notice.append(decimal: Int(head.load(ordering: .relaxed) - tail.load(ordering: .relaxed)))
        notice.append(" lines still unprinted after 1 s of flushing; giving up")
        notice.withBytes { Serial.write($0) }
        Serial.send(0x0A)
        return
      }
    }
  }

  /// Makes the running CPU's output urgent: it takes printing over after 20 ms rather
  /// than 1 s. Panic context.
  static func markUrgent() {
    urgentCPU.store(ownerID(), ordering: .relaxed)
  }

  /// Owner ID of an AP that has not found its CPU number yet.
  private static let unknownCPU = Int.max

  /// The running CPU's ID in `printer`: its index + 1.
  private static func ownerID() -> Int {
    let index = PerCPU.currentIndexOrUnknown
    return index >= 0 ? index + 1 : unknownCPU
  }

  /// Waits until `record` is free for `lap`, printing meanwhile if we can: the record
  /// was last used a whole ring ago, and printing it is what frees it.
  private static func waitUntilFree(_ record: UnsafeMutableRawPointer, lap: UInt64, me: Int) {
    let start = Clock.nanoseconds()
    // Acquire pairs with the printer's release when it frees the slot: the old text is
    // out before we overwrite it.
    while state(record).pointee.load(ordering: .acquiring) != 2 * lap {
      if !drain(me: me) { _ = takeOver(me: me, since: start) }
      CPUInstructions.pause()
    }
  }

  /// Tries to become the printer and print every committed record in order. Returns
  /// whether this CPU printed (it held the role at some point).
  @discardableResult
  private static func drain(me: Int) -> Bool {
    var printed = false
    // Sequentially consistent, with the commit in write(): either this CAS sees the
    // printer gone, or the printer's re-check below sees our committed record.
    while printer.compareExchange(expected: 0, desired: me, ordering: .sequentiallyConsistent).exchanged {
      printed = true
      printPending(me: me)
      printer.store(0, ordering: .sequentiallyConsistent)
      if !isCommitted(tail.load(ordering: .relaxed)) { break }
    }
    return printed
  }

  /// Prints committed records from `tail` while this CPU holds the printer role.
  private static func printPending(me: Int) {
    while true {
      let ticket = tail.load(ordering: .relaxed)
      guard ticket < head.load(ordering: .relaxed), printer.load(ordering: .relaxed) == me else { return }
      let record = slot(ticket)
      let lap = ticket / UInt64(slots)
      if state(record).pointee.load(ordering: .acquiring) == 2 * lap + 1 {  // pairs with the commit
        let count = Int(record.load(fromByteOffset: 8, as: UInt64.self))
        Serial.write(
          UnsafeBufferPointer(start: (record + textOffset).assumingMemoryBound(to: UInt8.self), count: count))
        Serial.send(0x0A)
      } else if !skipIfStuck(record, ticket: ticket) {
        return  // its writer is still copying; it will drain when it commits
      }
      // Release pairs with the writer's acquire in waitUntilFree(): the slot is reusable.
      state(record).pointee.store(2 * (lap + 1), ordering: .releasing)
      tail.store(ticket + 1, ordering: .relaxed)
    }
  }

  /// The uncommitted record the printer last found at `tail`, and since when. Printer only.
  nonisolated(unsafe) private static var stalledTicket = UInt64.max
  nonisolated(unsafe) private static var stalledSince: UInt64 = 0

  /// A record reserved but not committed for `skipAfterNanoseconds` while later ones
  /// wait: its writer was stopped mid-line. Marks it skipped (the writer's commit then
  /// fails) so the log moves on. Returns whether it was skipped.
  private static func skipIfStuck(_ record: UnsafeMutableRawPointer, ticket: UInt64) -> Bool {
    let now = Clock.nanoseconds()
    if stalledTicket != ticket { (stalledTicket, stalledSince) = (ticket, now) }
    guard now &- stalledSince > skipAfterNanoseconds else { return false }
    let lap = ticket / UInt64(slots)
    let skipped = state(record).pointee.compareExchange(
      expected: 2 * lap, desired: 2 * lap + 1, ordering: .sequentiallyConsistent
    ).exchanged
    if skipped {
      let notice: StaticString = "console: skipped a line whose CPU stopped while writing it"
      notice.withUTF8Buffer { Serial.write($0) }
      Serial.send(0x0A)
    }
    return skipped
  }

  /// Takes the printer role from a CPU that has held it past the bound. Returns whether
  /// this CPU is now the printer.
  private static func takeOver(me: Int, since start: UInt64) -> Bool {
    let bound =
      urgentCPU.load(ordering: .relaxed) == me
      ? urgentTakeoverAfterNanoseconds : takeoverAfterNanoseconds
    let holder = printer.load(ordering: .relaxed)
    guard holder != 0, holder != me, Clock.nanoseconds() &- start > bound else { return false }
    guard printer.compareExchange(expected: holder, desired: me, ordering: .sequentiallyConsistent).exchanged
    else { return false }
    takeoverCount.wrappingAdd(1, ordering: .relaxed)
    var notice: LogLine = "console: CPU "
    notice.append(decimal: me == unknownCPU ? -1 : me - 1)
    notice.append(" took printing over from CPU ")
    notice.append(decimal: holder == unknownCPU ? -1 : holder - 1)
    notice.append(" after waiting ")
    notice.append(decimal: Int((Clock.nanoseconds() &- start) / 1_000_000))
    notice.append(" ms")
    notice.withBytes { Serial.write($0) }
    Serial.send(0x0A)
    printPending(me: me)
    printer.store(0, ordering: .sequentiallyConsistent)
    return true
  }

  private static func isCommitted(_ ticket: UInt64) -> Bool {
    guard ticket < head.load(ordering: .relaxed) else { return false }
    let lap = ticket / UInt64(slots)
    return state(slot(ticket)).pointee.load(ordering: .sequentiallyConsistent) == 2 * lap + 1
  }

  private static func slot(_ ticket: UInt64) -> UnsafeMutableRawPointer {
    KernelSymbols.consoleRing + Int(ticket % UInt64(slots)) * slotSize
  }

  private static func state(_ record: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
    record.assumingMemoryBound(to: Atomic<UInt64>.self)
  }
}

/// Writes one line to the log. Any context; never allocates.
///
/// `log("Brought up \(count) CPUs")` builds the line in a fixed buffer on the stack
/// through `LogLine`'s own interpolation: no `String` is created.
func log(_ line: LogLine) {
  Console.write(line)
}
