import Synchronization

/// How a CPU that waits on the ring (a writer waiting for a slot, `flush()`) decides to
/// take printing over, and when to give up.
///
/// Progress is any change of the cursor word: a printer that keeps printing, however
/// slowly (a 115 200-baud UART drains a full ring in about ten seconds), is never taken
/// over; one that holds the role without moving for the bound is.
struct ProgressWatch<Platform: LogRingPlatform> {
  private let ring: LogRing<Platform>
  private let me: UInt16
  private var seen: LogCursor
  private var since: UInt64

  /// Starts watching `ring` on behalf of owner `me`.
  init(_ ring: LogRing<Platform>, me: UInt16) {
    self.ring = ring
    self.me = me
    seen = ring.cursorSnapshot
    since = Platform.nanoseconds()
  }

  /// One step of a wait: takes printing over if the printer made no progress for the
  /// bound, at once if the printer is this CPU's own interrupted context. Returns false
  /// when nothing moved for `giveUpAfter`.
  mutating func allowsWaiting() -> Bool {
    let now = Platform.nanoseconds()
    let current = ring.cursorSnapshot
    if current != seen {
      (seen, since) = (current, now)
      return true
    }
    let quiet = now &- since
    let isOwnInterrupted = current.owner == me && me != LogCursor.unknownOwner
    if current.owner != 0 && (isOwnInterrupted || quiet > ring.takeoverBound(for: me)) {
      if ring.takeOver(from: current, me: me, waited: quiet) {
        (seen, since) = (ring.cursorSnapshot, Platform.nanoseconds())
        return true
      }
    }
    return quiet <= Platform.logTiming.giveUpAfter
  }
}

extension LogRing {
  /// The takeover bound for owner `me`: short if it is writing a panic report.
  func takeoverBound(for me: UInt16) -> UInt64 {
    let timing = Platform.logTiming
    let urgent = urgentOwner.pointee.load(ordering: .relaxed) == UInt64(me)
    return urgent ? timing.urgentTakeoverAfter : timing.takeoverAfter
  }

  /// Takes the printer role from the owner in `seen`, which made no progress for
  /// `waited` ns, and prints. Returns whether this CPU got the role.
  ///
  /// The exchange succeeds only if the cursor is exactly `seen`: the old printer did
  /// not move meanwhile. From then on every exchange and check of the old printer fails.
  func takeOver(from seen: LogCursor, me: UInt16, waited: UInt64) -> Bool {
    let mine = seen.owned(by: me)
    // Pairs with the old printer's exchanges: its frees and advances so far are
    // visible, and it cannot make another.
    guard
      cursor.pointee.compareExchange(
        expected: seen.raw, desired: mine.raw, ordering: .sequentiallyConsistent
      ).exchanged
    else { return false }
    Platform.count(.takeover)
    var notice: LogLine = "console: CPU "
    notice.append(decimal: LogCursor.cpuIndex(of: me))
    notice.append(" took printing over from CPU ")
    notice.append(decimal: LogCursor.cpuIndex(of: seen.owner))
    notice.append(" after ")
    notice.append(decimal: Int(truncatingIfNeeded: waited / 1_000_000))
    notice.append(" ms without progress")
    // End the old printer's cut-off line first, so the notice and its reprint start
    // on a line of their own.
    if seen.isMidLine {
      guard printLine(UnsafeBufferPointer(start: nil, count: 0), mine: mine) else { return true }
    }
    let stillMine = notice.withBytes { printLine($0, mine: mine) }
    if stillMine { printPending(from: mine) }
    return true
  }
}
