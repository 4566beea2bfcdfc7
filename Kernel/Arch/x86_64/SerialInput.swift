import Synchronization

/// What is typed at the serial console, for the shell: COM1's receive interrupt, routed
/// through the I/O APIC to the reading CPU, moves bytes from the UART's 16-byte FIFO
/// into a 256-byte buffer; the reader takes them from there, sleeping in between.
///
/// COM1 is ISA IRQ 4. The MADT may override where it is wired (`MADT.route(isaIRQ:)`);
/// on QEMU's PC and Q35 machines it reaches GSI 4, edge-triggered, active high. It is
/// delivered as vector 0x34, the one Linux gives ISA IRQ 4 (ISA_IRQ_VECTOR(4) in
/// arch/x86/include/asm/irq_vectors.h), to the CPU that called `open`, and only to it.
///
/// One CPU owns the input: the interrupt goes to it, and it reads. The buffer is touched
/// only on that CPU with interrupts off (the handler, and `read` between enabling them),
/// so it needs no lock and no atomics. Where the line cannot be routed (no I/O APIC, or a
/// reading CPU with an x2APIC ID above 255), the reader polls the UART instead, every
/// `pollNanoseconds`. With the interrupt, the reader still looks at the UART itself after
/// `interruptBackstopNanoseconds` without one, so a lost interrupt would cost latency,
/// never a byte, and would show in `bytesByPolling`.
enum SerialInput {
  /// COM1's ISA interrupt line.
  static let isaIRQ: UInt8 = 4
  /// How often a reader without the interrupt polls the UART.
  static let pollNanoseconds: UInt64 = 10_000_000
  /// How long a reader with the interrupt sleeps before it looks at the UART anyway.
  static let interruptBackstopNanoseconds: UInt64 = 1_000_000_000
  static let capacity = 256

  /// How the input arrives, once `open` has run.
  enum Mode {
    /// By interrupt: the GSI the IRQ reaches.
    case interrupt(gsi: UInt32)
    /// By polling, and why the interrupt could not be used.
    case polled(LogLine)
  }

  /// The MADT's route for COM1, recorded at boot (`setUp`).
  nonisolated(unsafe) private static var route: (gsi: UInt32, activeLow: Bool, levelTriggered: Bool)? = nil
  nonisolated(unsafe) private static var buffer: UnsafeMutablePointer<UInt8>? = nil
  nonisolated(unsafe) private static var head = 0  // next byte to read
  nonisolated(unsafe) private static var count = 0
  /// The CPU that reads and takes the interrupt; `CPUIndex.unknown` before `open`.
  nonisolated(unsafe) private(set) static var owner = CPUIndex.unknown
  /// How input arrives; nil before `open`.
  nonisolated(unsafe) private(set) static var mode: Mode? = nil

  /// Bytes the receive interrupt's handler took from the UART, and its runs.
  static let bytesByInterrupt = Atomic<Int>(0)
  static let interrupts = Atomic<Int>(0)
  /// Bytes the reader found in the UART itself: polling, or with the interrupt routed,
  /// bytes no interrupt brought within the backstop (0 when the interrupt works).
  static let bytesByPolling = Atomic<Int>(0)
  /// Bytes lost because the buffer was full.
  static let dropped = Atomic<Int>(0)

  /// Records where COM1's interrupt is wired. Boot CPU, at boot.
  static func setUp(_ madt: MADT?) {
    route = madt.map { $0.route(isaIRQ: isaIRQ) }
  }

  /// Makes the running CPU the input's owner and turns the receive interrupt on where
  /// it can be routed. Returns how input will arrive. Thread context; allocates; once.
  static func open() -> Mode {
    precondition(buffer == nil, "serial input opened twice")
    buffer = .allocate(capacity: capacity)
    let interrupts = CPUInstructions.saveAndDisableInterrupts()
    defer { CPUInstructions.restoreInterrupts(interrupts) }
    owner = X86_64Platform.currentCPU
    while Serial.receive() != nil {}  // whatever was typed before the shell: not a command
    guard let route else { return opened(.polled("no MADT, so no I/O APIC to route COM1 through")) }
    do throws(IOAPIC.RouteError) {
      try IOAPIC.route(
        gsi: route.gsi, activeLow: route.activeLow, levelTriggered: route.levelTriggered,
        to: CPUs.apicID(of: owner), vector: .serialInput)
    } catch {
      switch error {
      case .noPin(let gsi): return opened(.polled("no I/O APIC has GSI \(UInt64(gsi))"))
      case .destinationTooLarge(let id):
        return opened(.polled("CPU \(owner)'s APIC ID \(UInt64(id.rawValue)) does not fit an I/O APIC entry"))
      }
    }
    Serial.setReceiveInterrupt(true)
    return opened(.interrupt(gsi: route.gsi))
  }

  private static func opened(_ how: Mode) -> Mode {
    mode = how
    return how
  }

  /// The receive interrupt: moves what the UART holds into the buffer. Interrupt
  /// context on the owner, before EOI; the dispatcher then wakes the sleeping reader.
  static func handleInterrupt() {
    interrupts.wrappingAdd(1, ordering: .relaxed)
    bytesByInterrupt.wrappingAdd(drainUART(), ordering: .relaxed)
  }

  /// The next byte typed, waiting at most `nanoseconds` for it; nil when none came.
  /// Thread context on the owner, interrupts on.
  static func read(atMost nanoseconds: UInt64) -> UInt8? {
    precondition(X86_64Platform.currentCPU == owner, "serial input read on a CPU that does not own it")
    let deadline = Clock.nanoseconds() &+ nanoseconds
    let interruptDriven: Bool
    switch mode {
    case .interrupt: interruptDriven = true
    case .polled, nil: interruptDriven = false
    }
    let backstop = interruptDriven ? interruptBackstopNanoseconds : pollNanoseconds
    // With the interrupt, the UART is looked at here only after a whole backstop without
    // one: a byte found then is one the interrupt did not bring (`bytesByPolling`).
    var lookAtUART = !interruptDriven
    while true {
      CPUInstructions.disableInterrupts()
      if lookAtUART { bytesByPolling.wrappingAdd(drainUART(), ordering: .relaxed) }
      if let byte = take() {
        CPUInstructions.enableInterrupts()
        return byte
      }
      let now = Clock.nanoseconds()
      guard now < deadline else {
        CPUInstructions.enableInterrupts()
        return nil
      }
      let waitEnd = min(deadline, now + backstop)
      // Interrupts off since the check: the receive interrupt that brings the next byte
      // stays pending until this wait enables them; its handler then fills the buffer
      // and wakes us. The wait returns with interrupts on, so a pending interrupt has
      // been taken by the time we look again.
      X86_64Platform.waitForInterrupt(atMost: waitEnd - now)
      lookAtUART = !interruptDriven || Clock.nanoseconds() >= waitEnd
    }
  }

  /// Moves bytes from the UART to the buffer; returns how many. Owner, interrupts off.
  private static func drainUART() -> Int {
    guard let buffer else { return 0 }
    var moved = 0
    while let byte = Serial.receive() {
      moved += 1
      guard count < capacity else {
        dropped.wrappingAdd(1, ordering: .relaxed)
        continue
      }
      buffer[(head + count) % capacity] = byte
      count += 1
    }
    return moved
  }

  /// The oldest buffered byte. Owner, interrupts off.
  private static func take() -> UInt8? {
    guard let buffer, count > 0 else { return nil }
    let byte = buffer[head]
    head = (head + 1) % capacity
    count -= 1
    return byte
  }
}

extension Vector {
  /// COM1's receive interrupt (`SerialInput`), as Linux numbers ISA IRQ 4.
  static let serialInput = Vector(0x34)
}
