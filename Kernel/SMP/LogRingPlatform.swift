import Synchronization

/// What `LogRing` needs from the machine: who is running, a clock, and an output device
/// that takes a few bytes at a time.
///
/// Requirements are static so that Embedded Swift specialises the ring for the kernel's
/// UART; host tests provide threads and a byte buffer.
public protocol LogRingPlatform {
  /// The running CPU's owner ID in the ring: its index + 1, never 0, or
  /// `LogCursor.unknownOwner` for a CPU that does not know its index yet. Any context.
  static var logOwnerID: UInt16 { get }
  /// Monotonic nanoseconds, comparable across CPUs.
  static func nanoseconds() -> UInt64
  /// A spin-wait hint.
  static func relax()
  /// Waits, bounded, until the device can take `deviceBurst` bytes without waiting
  /// (a 16550 with an empty FIFO). The ring checks that it still owns the printer role
  /// after this returns and before `send(_:)`, so a printer stalled here sends nothing
  /// once it has been taken over.
  static func waitForDevice()
  /// Sends at most `deviceBurst` bytes. Any context; never allocates.
  static func send(_ bytes: UnsafeBufferPointer<UInt8>)
  /// Bytes the device takes per `waitForDevice()` (the 16550's FIFO depth).
  static var deviceBurst: Int { get }
  /// The ring's bounds.
  static var logTiming: LogRingTiming { get }
  /// Counts an event (relaxed statistics). Any context.
  static func count(_ event: LogRingEvent)
}

/// Something the ring counts for its owner's statistics.
public enum LogRingEvent {
  /// The printer role was taken from a CPU that made no progress for the bound.
  case takeover
  /// A writer's line was dropped: it committed too late (skipped) or gave up waiting.
  case skipped
}

/// The ring's bounds, in nanoseconds.
public struct LogRingTiming: Sendable {
  /// No progress of the printer for this long lets a waiting CPU take printing over.
  public var takeoverAfter: UInt64
  /// The same for a CPU marked urgent (a panic report).
  public var urgentTakeoverAfter: UInt64
  /// A record reserved but not committed for this long, at the head of the queue, is
  /// skipped: its writer was stopped mid-line.
  public var skipAfter: UInt64
  /// A waiting writer or `flush()` that sees no progress at all for this long gives up
  /// and says so on the device.
  public var giveUpAfter: UInt64

  /// Bounds as given.
  public init(takeoverAfter: UInt64, urgentTakeoverAfter: UInt64, skipAfter: UInt64, giveUpAfter: UInt64) {
    self.takeoverAfter = takeoverAfter
    self.urgentTakeoverAfter = urgentTakeoverAfter
    self.skipAfter = skipAfter
    self.giveUpAfter = giveUpAfter
  }
}

/// The printer's word: which CPU prints, the next ticket to print (`tail`), whether the
/// printer has sent part of a line, and an epoch that changes with every owner.
///
/// Role and tail live in one word so that one compare-exchange both checks that the
/// caller still prints and moves the tail: a printer taken over while stalled can never
/// advance, rewind or release what is no longer its own. The epoch keeps two CPUs that
/// share `unknownOwner` from mistaking each other's ownership for their own (ABA).
///
/// Bits: 0–39 tail, 40 mid-line, 41–47 epoch, 48–63 owner (0 = no printer). 2^40 tickets
/// are more lines than a machine prints in years.
public struct LogCursor: Equatable, Sendable {
  /// The packed word.
  public var raw: UInt64

  /// The owner ID of a CPU that does not know its index yet.
  public static let unknownOwner: UInt16 = 0xFFFF
  private static let tailMask: UInt64 = (1 << 40) - 1
  private static let midLineBit: UInt64 = 1 << 40
  private static let epochShift: UInt64 = 41
  private static let epochMask: UInt64 = 0x7F << 41

  /// Wraps a packed word.
  public init(raw: UInt64) { self.raw = raw }

  /// Next ticket to print.
  public var tail: UInt64 { raw & Self.tailMask }
  /// Owner ID of the printer, 0 when none.
  public var owner: UInt16 { UInt16(truncatingIfNeeded: raw >> 48) }
  /// Whether the printer has sent part of a line and not its newline.
  public var isMidLine: Bool { raw & Self.midLineBit != 0 }

  /// The same tail, owned by `owner` in a new epoch, at the start of a line.
  public func owned(by owner: UInt16) -> LogCursor {
    let epoch = (raw &+ (1 << Self.epochShift)) & Self.epochMask
    return LogCursor(raw: UInt64(owner) << 48 | epoch | tail)
  }

  /// No owner, same tail and epoch.
  public func released() -> LogCursor {
    LogCursor(raw: raw & Self.epochMask | tail)
  }

  /// The next ticket, same owner and epoch, at the start of a line.
  public func advanced() -> LogCursor {
    LogCursor(raw: raw & ~(Self.tailMask | Self.midLineBit) | (tail + 1) & Self.tailMask)
  }

  /// The same cursor with the mid-line flag set or cleared.
  public func midLine(_ on: Bool) -> LogCursor {
    LogCursor(raw: on ? raw | Self.midLineBit : raw & ~Self.midLineBit)
  }

  /// The CPU index an owner ID stands for, -1 when unknown or none.
  public static func cpuIndex(of owner: UInt16) -> Int {
    owner == 0 || owner == unknownOwner ? -1 : Int(owner) - 1
  }
}
