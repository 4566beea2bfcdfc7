import Synchronization

/// A lock-free ring of log records drained by one printer at a time, as Linux's printk.
///
/// A writer takes a ticket from `head`, waits until the ticket's slot is free for its
/// lap, copies its line in and commits it; then it tries to become the printer. The
/// printer prints records in ticket order from `tail`, one whole line at a time. A CPU
/// that needs the ring to move (a writer waiting for a slot, `flush()`) and sees the
/// printer make no progress for `LogRingTiming.takeoverAfter` takes the role over.
///
/// Slot states, for the record with ticket t = lap * slots + slot:
/// `4 lap` free for t; `4 lap + 1` committed; `4 lap + 2` skipped (its writer was too
/// slow); `4 (lap + 1)` printed and free for the next lap. Zeroed storage is a ring whose
/// every slot is free for lap 0.
///
/// The rules that make a takeover safe (see `LogRingPrinter.swift`):
/// - The role and `tail` change only by compare-exchange of the one `LogCursor` word,
///   from the value the caller last owned; the role is released the same way.
/// - A slot is freed by compare-exchange from its own lap's committed or skipped state,
///   before `tail` moves past it, so it is freed once even when two printers printed it.
/// - A printer checks its ownership before each burst of bytes and stops when lost.
///
/// The ring is a view over caller-provided zeroed storage (`storageSize(slots:)` bytes,
/// 8-byte aligned): a 64-byte-spaced header of counters, then the slots.
public struct LogRing<Platform: LogRingPlatform> {
  /// Bytes of header before the first slot.
  public static var headerSize: Int { 256 }
  /// Bytes per slot: state, byte count, and a `LogLine`'s text.
  public static var slotSize: Int { 224 }
  static var textOffset: Int { 16 }
  /// In a record's length word (offset 8): the text ends without a newline
  /// (`LogLine.endsLine` false).
  static var continuedFlag: UInt64 { 1 << 32 }

  /// Bytes of storage a ring of `slots` records needs.
  public static func storageSize(slots: Int) -> Int { headerSize + slots * slotSize }

  let base: UnsafeMutableRawPointer
  let slotCount: UInt64

  /// A view of the ring in `storage`, which holds `storageSize(slots:)` zeroed bytes
  /// (or a ring earlier written through a view with the same `slots`).
  public init(storage: UnsafeMutableRawPointer, slots: Int) {
    base = storage
    slotCount = UInt64(slots)
  }

  /// The printer's `LogCursor` word.
  var cursor: UnsafeMutablePointer<Atomic<UInt64>> { word(0) }
  /// Next ticket to hand to a writer.
  var head: UnsafeMutablePointer<Atomic<UInt64>> { word(64) }
  /// The uncommitted ticket a printer last found at the tail, and since when (relaxed:
  /// a heuristic for skipping a stuck writer).
  var stalledTicket: UnsafeMutablePointer<Atomic<UInt64>> { word(128) }
  var stalledSince: UnsafeMutablePointer<Atomic<UInt64>> { word(136) }
  /// Owner ID of a CPU writing a panic report; it takes printing over quickly.
  var urgentOwner: UnsafeMutablePointer<Atomic<UInt64>> { word(144) }

  private func word(_ offset: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
    (base + offset).assumingMemoryBound(to: Atomic<UInt64>.self)
  }

  /// The slot of `ticket`.
  func slot(_ ticket: UInt64) -> UnsafeMutableRawPointer {
    base + Self.headerSize + Int(ticket % slotCount) * Self.slotSize
  }

  /// The state word of a slot.
  func state(_ record: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
    record.assumingMemoryBound(to: Atomic<UInt64>.self)
  }

  /// The lap of `ticket`.
  func lap(_ ticket: UInt64) -> UInt64 { ticket / slotCount }

  /// Lines reserved and not yet printed. Relaxed: a snapshot for tests and reports.
  public var unprintedCount: UInt64 {
    let tail = LogCursor(raw: cursor.pointee.load(ordering: .relaxed)).tail
    return head.pointee.load(ordering: .relaxed) &- tail
  }

  /// The printer's word now. Relaxed: a snapshot.
  public var cursorSnapshot: LogCursor { LogCursor(raw: cursor.pointee.load(ordering: .relaxed)) }

  /// Appends `line` and prints whatever is pending if no other CPU is printing.
  /// Any context, including NMI and panic; never allocates. Waits only when the ring is
  /// full, and then boundedly, printing or taking printing over meanwhile.
  public func write(_ line: borrowing LogLine) {
    let me = Platform.logOwnerID
    let ticket = head.pointee.wrappingAdd(1, ordering: .relaxed).oldValue
    let record = slot(ticket)
    let free = 4 * lap(ticket)
    guard waitUntilFree(record, free: free, me: me) else {
      Platform.count(.skipped)  // the printer skips the ticket once it reaches it
      return
    }
    let continued = line.endsLine ? 0 : Self.continuedFlag
    line.withBytes { bytes in
      let length = UInt64(bytes.count) | continued
      record.storeBytes(of: length, toByteOffset: 8, as: UInt64.self)
      if let start = bytes.baseAddress {
        (record + Self.textOffset).copyMemory(from: start, byteCount: bytes.count)
      }
    }
    // Publish the text with the state: the release half pairs with the printer's load
    // in printPending(); sequentially consistent with the cursor load in drain() below
    // and the printer's release-then-recheck, so one of us sees the other. A failed
    // exchange means the printer skipped us as stuck: the line is lost.
    let committed = state(record).pointee.compareExchange(
      expected: free, desired: free + 1, ordering: .sequentiallyConsistent)
    if !committed.exchanged { Platform.count(.skipped) }
    drain(me: me)
  }

  /// Prints every line reserved before the call, taking printing over from a printer
  /// that makes no progress. Gives up, saying so on the device, after
  /// `LogRingTiming.giveUpAfter` without progress. Call before leaving the machine.
  public func flush() {
    let me = Platform.logOwnerID
    let target = head.pointee.load(ordering: .relaxed)
    var watch = ProgressWatch(self, me: me)
    while cursorSnapshot.tail < target {
      drain(me: me)
      guard watch.allowsWaiting() else {
        var notice: LogLine = "console: "
        notice.append(decimal: Int(truncatingIfNeeded: target &- cursorSnapshot.tail))
        notice.append(" lines unprinted, no progress while flushing; giving up")
        sendDirect(notice)
        return
      }
      Platform.relax()
    }
  }

  /// Makes the running CPU's output urgent: it takes printing over after
  /// `urgentTakeoverAfter`. Panic context.
  public func markUrgent() {
    urgentOwner.pointee.store(UInt64(Platform.logOwnerID), ordering: .relaxed)
  }

  /// Waits until `record` is free for this lap (`free`), printing meanwhile if it can:
  /// the record was last used a whole ring ago, and printing it is what frees it.
  /// Returns false if the printer already skipped the ticket, or nothing moved for
  /// `giveUpAfter` (the ring is stuck; said on the device).
  private func waitUntilFree(_ record: UnsafeMutableRawPointer, free: UInt64, me: UInt16) -> Bool {
    var watch = ProgressWatch(self, me: me)
    while true {
      // Acquire pairs with the release of the printer's free in freeSlot(): the old
      // text is out before we overwrite it.
      let now = state(record).pointee.load(ordering: .acquiring)
      if now == free { return true }
      if now > free { return false }  // skipped while we were slow to look
      drain(me: me)
      guard watch.allowsWaiting() else {
        var notice: LogLine = "console: CPU "
        notice.append(decimal: LogCursor.cpuIndex(of: me))
        notice.append(" found no free record and no progress; line dropped")
        sendDirect(notice)
        return false
      }
      Platform.relax()
    }
  }

  /// Sends `line` straight to the device, on a line of its own: only when the ring is
  /// what is stuck, so it may land inside a stalled printer's line.
  func sendDirect(_ line: borrowing LogLine) {
    var copy: LogLine = "\n"
    line.withBytes { copy.append(bytes: $0) }
    copy.append("\n")
    copy.withBytes { bytes in
      var index = 0
      while index < bytes.count {
        Platform.waitForDevice()
        let end = min(index + Platform.deviceBurst, bytes.count)
        Platform.send(UnsafeBufferPointer(rebasing: bytes[index..<end]))
        index = end
      }
    }
  }
}
