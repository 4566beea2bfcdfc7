/// The 16550 UART on COM1, polled, 115200 8N1.
///
/// Register offsets and bits from the PC16550D datasheet (National Semiconductor, 1995),
/// §8 "Registers". Output is polled (the console, `Console`); input is read by
/// `SerialInput`, on its receive interrupt or polled.
enum Serial {
  private enum Register: UInt16 {
    case data = 0  // THR when written; with DLAB set, divisor latch low
    case interruptEnable = 1  // IER; with DLAB set, divisor latch high
    case fifoControl = 2  // FCR
    case lineControl = 3  // LCR
    case modemControl = 4  // MCR
    case lineStatus = 5  // LSR
  }

  private static let lcrDivisorLatchAccess: UInt8 = 1 << 7
  private static let lcr8N1: UInt8 = 0x03
  private static let fcrEnableAndClear: UInt8 = 0x07
  private static let mcrDTRAndRTS: UInt8 = 0x03
  /// MCR bit 3, OUT2: on a PC it gates the UART's interrupt line onto the ISA bus.
  private static let mcrOut2: UInt8 = 1 << 3
  /// IER bit 0: interrupt when received data is available (§8.4).
  private static let ierReceivedData: UInt8 = 1 << 0
  private static let lsrDataReady: UInt8 = 1 << 0
  private static let lsrTransmitHoldingEmpty: UInt8 = 1 << 5
  /// Polls of LSR before a byte is sent anyway. QEMU's UART is always ready; a real one
  /// at 115200 baud drains a byte in ~87 us, far below this many port reads.
  private static let readyPollLimit = 100_000

  private static func write(_ register: Register, _ value: UInt8) {
    CPUInstructions.outb(Port.com1 + register.rawValue, value)
  }

  private static func read(_ register: Register) -> UInt8 {
    CPUInstructions.inb(Port.com1 + register.rawValue)
  }

  /// Programs COM1 for 115200 8N1 with FIFOs on and its interrupts off.
  /// - Precondition: boot CPU, before any other CPU runs.
  static func initialize() {
    write(.interruptEnable, 0)
    write(.lineControl, lcrDivisorLatchAccess)
    write(.data, 1)  // divisor 1: 115200 baud from the 1.8432 MHz clock
    write(.interruptEnable, 0)
    write(.lineControl, lcr8N1)
    write(.fifoControl, fcrEnableAndClear)
    write(.modemControl, mcrDTRAndRTS)
  }

  /// The next received byte, or nil when the receive FIFO is empty (LSR bit 0, Data
  /// Ready). Reading RBR takes the byte and, once the FIFO is empty, ends the receive
  /// interrupt. Call from one CPU at a time (`SerialInput`).
  static func receive() -> UInt8? {
    read(.lineStatus) & lsrDataReady != 0 ? read(.data) : nil
  }

  /// Turns the receive interrupt on (IER, and OUT2 to let it out of the chip) or off.
  static func setReceiveInterrupt(_ on: Bool) {
    write(.modemControl, on ? mcrDTRAndRTS | mcrOut2 : mcrDTRAndRTS)
    write(.interruptEnable, on ? ierReceivedData : 0)
  }

  /// Depth of the 16550's transmit FIFO, enabled by `initialize()`.
  private static let fifoDepth = 16

  /// Sends one byte, waiting a bounded time for the transmitter.
  /// Any context; the caller serialises whole lines (see `Console`).
  static func send(_ byte: UInt8) {
    waitForTransmitterEmpty()
    write(.data, byte)
  }

  /// Sends `bytes`, up to a FIFO's worth per check of the line status: with FIFOs
  /// enabled, THRE means the whole transmit FIFO is empty (PC16550D §8.6.3).
  static func write(_ bytes: UnsafeBufferPointer<UInt8>) {
    var index = 0
    while index < bytes.count {
      waitForTransmitterEmpty()
      let end = min(index + fifoDepth, bytes.count)
      while index < end {
        write(.data, bytes[index])
        index += 1
      }
    }
  }

  /// Bounded and silent on expiry on purpose: the only place to report a stuck UART
  /// is the UART. The bytes are then written anyway (and may be lost).
  private static func waitForTransmitterEmpty() {
    var polls = 0
    while read(.lineStatus) & lsrTransmitHoldingEmpty == 0 && polls < readyPollLimit {
      polls += 1
    }
  }
}
