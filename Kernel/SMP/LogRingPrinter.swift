import Synchronization

/// The printer side of `LogRing`: taking the role, printing, skipping, taking over.
///
/// A printer owns the role while the cursor word holds the value it last wrote (its
/// owner ID and epoch). Each record goes: print it (checking ownership before every
/// burst of bytes), free its slot by compare-exchange from its lap's state, then advance
/// the cursor by compare-exchange from the owned value. A printer stalled anywhere in
/// that sequence and taken over fails its next exchange or check and leaves: it never
/// re-prints past the check, rewinds `tail`, frees a slot twice or clears the new
/// owner's role.
///
/// What a takeover may show on the device, by where the old printer stalled:
/// - before a line's first burst (the common case, a stalled UART): nothing extra;
/// - inside a line: the cut-off start of the line, a newline, then the line whole;
/// - after the line's last burst but before freeing its slot: the line twice. That one
///   duplicate is the price of freeing before advancing, which keeps a printer stopped
///   for good from holding a slot that a writer a lap later would wait for.
/// A printer stalled between its check and its `send` may put one burst after the
/// takeover; only an NMI, SMI or a host preempting the vCPU stalls it there.
extension LogRing {
  /// Becomes the printer if no CPU is and prints every committed record. Returns
  /// without printing if another CPU prints, including this CPU's own interrupted
  /// printing (an NMI or IRQ logging while it prints): that printer, on resuming,
  /// prints the record too. Returns whether this CPU printed.
  @discardableResult
  func drain(me: UInt16) -> Bool {
    var printed = false
    var first = true
    while true {
      // Sequentially consistent, with the commit in write(): either this load sees the
      // printer gone, or the printer's recheck after releasing sees our record.
      let seen = LogCursor(raw: cursor.pointee.load(ordering: .sequentiallyConsistent))
      guard seen.owner == 0 else { return printed }
      // After a release, only a ready record brings us back (else we would spin on an
      // uncommitted one); the first pass also lets skipIfStuck() time a stuck writer.
      let pending = first && seen.tail < head.pointee.load(ordering: .relaxed)
      guard pending || isReady(seen.tail) else { return printed }
      let mine = seen.owned(by: me)
      // Pairs with the release (or advance) exchanges of the previous printer: its
      // frees and the cursor it left are visible.
      guard
        cursor.pointee.compareExchange(
          expected: seen.raw, desired: mine.raw, ordering: .sequentiallyConsistent
        ).exchanged
      else { continue }
      (printed, first) = (true, false)
      printPending(from: mine)
    }
  }

  /// Prints records from `mine.tail` while the cursor holds `mine`; returns when the
  /// ring is empty or the record at the tail is not ready (releasing the role), or when
  /// the role was lost.
  func printPending(from owned: LogCursor) {
    var mine = owned
    while true {
      let ticket = mine.tail
      let record = slot(ticket)
      let free = 4 * lap(ticket)
      // Acquire pairs with the commit in write() (the text is visible); sequentially
      // consistent for the release-then-recheck against write().
      let now = state(record).pointee.load(ordering: .sequentiallyConsistent)
      if now <= free {
        if ticket < head.pointee.load(ordering: .relaxed) && skipIfStuck(record, ticket: ticket) {
          continue
        }
        // Release pairs with the acquiring exchange in drain() of the next printer.
        // An exchange, not a store: if we lost the role, the word is not ours to clear.
        _ = cursor.pointee.compareExchange(
          expected: mine.raw, desired: mine.released().raw, ordering: .sequentiallyConsistent)
        return
      }
      if now == free + 1 || now == free + 2 {
        guard printRecord(record, skipped: now == free + 2, mine: mine) else { return }
        freeSlot(record, from: now, to: free + 4)
      }
      // now >= free + 4: a printer that lost the role printed and freed it; move on.
      // Pairs with the acquiring loads of the cursor by the next owner.
      let next = mine.advanced()
      guard
        cursor.pointee.compareExchange(
          expected: mine.raw, desired: next.raw, ordering: .sequentiallyConsistent
        ).exchanged
      else { return }
      mine = next
    }
  }

  /// Frees a printed slot for the next lap. Release pairs with the acquire in
  /// waitUntilFree(): our reads of the text come before the next writer's copy. An
  /// exchange from this lap's state, because a printer we took over from may have
  /// freed it already, and a store would then erase the next lap's commit.
  private func freeSlot(_ record: UnsafeMutableRawPointer, from now: UInt64, to next: UInt64) {
    _ = state(record).pointee.compareExchange(expected: now, desired: next, ordering: .releasing)
  }

  /// Prints one record, or the skip notice for a skipped one. Returns false if the
  /// role was lost meanwhile.
  private func printRecord(_ record: UnsafeMutableRawPointer, skipped: Bool, mine: LogCursor) -> Bool {
    if skipped {
      let notice: StaticString = "console: skipped a line whose CPU stopped while writing it"
      return notice.withUTF8Buffer { printLine($0, mine: mine) }
    }
    let stored = record.load(fromByteOffset: 8, as: UInt64.self)
    let text = UnsafeBufferPointer(
      start: (record + Self.textOffset).assumingMemoryBound(to: UInt8.self),
      count: min(Int(truncatingIfNeeded: stored & 0xFFFF_FFFF), LogLine.capacity))
    return printLine(text, mine: mine, newline: stored & Self.continuedFlag == 0)
  }

  /// Sends `bytes` and a newline (unless `newline` is false: a prompt, an echoed
  /// character) in device bursts while the cursor holds `mine`, with the mid-line flag
  /// set meanwhile so that a CPU taking over starts a fresh line. Returns false, having
  /// stopped, when the role was lost.
  func printLine(_ bytes: UnsafeBufferPointer<UInt8>, mine: LogCursor, newline: Bool = true) -> Bool {
    let started = mine.midLine(true)
    var newlineByte: UInt8 = 0x0A
    // The line and its newline, in bursts: [index, end) of `total` bytes.
    let total = bytes.count + (newline ? 1 : 0)
    guard total > 0 else { return cursor.pointee.load(ordering: .relaxed) == mine.raw }
    var index = 0
    while index < total {
      Platform.waitForDevice()
      if index == 0 {
        // The ownership check for the first burst. Relaxed: the exchange alone decides.
        guard
          cursor.pointee.compareExchange(expected: mine.raw, desired: started.raw, ordering: .relaxed)
            .exchanged
        else { return false }
      } else if cursor.pointee.load(ordering: .relaxed) != started.raw {
        return false  // taken over: the new printer prints this line whole
      }
      let end = min(index + Platform.deviceBurst, total)
      let textEnd = min(end, bytes.count)
      if index < textEnd { Platform.send(UnsafeBufferPointer(rebasing: bytes[index..<textEnd])) }
      if newline && end == total {
        withUnsafePointer(to: &newlineByte) { Platform.send(UnsafeBufferPointer(start: $0, count: 1)) }
      }
      index = end
    }
    return cursor.pointee.compareExchange(expected: started.raw, desired: mine.raw, ordering: .relaxed)
      .exchanged
  }

  /// Whether the record at `ticket` can be printed or passed. Sequentially consistent:
  /// the recheck after a release, against the commit in write().
  private func isReady(_ ticket: UInt64) -> Bool {
    let now = state(slot(ticket)).pointee.load(ordering: .sequentiallyConsistent)
    return now > 4 * lap(ticket)
  }

  /// A record reserved but not committed for `skipAfter` while it blocks the tail: its
  /// writer was stopped mid-line. Marks it skipped (the writer's commit then fails).
  /// Returns whether the caller should look at the record again.
  private func skipIfStuck(_ record: UnsafeMutableRawPointer, ticket: UInt64) -> Bool {
    let now = Platform.nanoseconds()
    if stalledTicket.pointee.exchange(ticket, ordering: .relaxed) != ticket {
      stalledSince.pointee.store(now, ordering: .relaxed)
      return false
    }
    guard now &- stalledSince.pointee.load(ordering: .relaxed) > Platform.logTiming.skipAfter else {
      return false
    }
    let free = 4 * lap(ticket)
    // Pairs with the commit exchange in write(): exactly one of the two wins. Failure
    // means the writer committed just now; looking again prints its line.
    _ = state(record).pointee.compareExchange(
      expected: free, desired: free + 2, ordering: .sequentiallyConsistent)
    return true
  }
}
