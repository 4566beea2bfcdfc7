/// Checks of the boot suite that need more than a few lines.

/// Boot/layout.inc and `TrampolineParameters` describe the same block.
enum TrampolineLayoutCheck {
  static func run() -> TestResult {
    let asm = KernelSymbols.trampolineLayout
    guard asm[0] == Trampoline.base, asm[1] == Trampoline.parametersAddress,
      asm[11] == Trampoline.retryBase
    else {
      return .fail("asm places the trampoline at \(hex: asm[0]) / \(hex: asm[1]) / \(hex: asm[11])")
    }
    guard asm[2] == UInt64(MemoryLayout<TrampolineParameters>.size) else {
      return .fail("asm block is \(asm[2]) bytes, Swift's \(MemoryLayout<TrampolineParameters>.size)")
    }
    // Write distinct values through Swift, read them back at the asm offsets.
    let probe = TrampolineParameters(
      cr3: 0x1001, entry: 0x1002, stackBase: 0x1003, stackSize: 0x1004, stackCount: 0x1005,
      nextTicket: 0x1006, gsBase: 0x1007, earlyIDT: 0x1008, stackStride: 0x1009)
    return withUnsafeBytes(of: probe) { bytes in
      for field in 0..<9 {
        // Offsets in the order of the fields; the stride's comes after the retry base.
        let offset = Int(field < 8 ? asm[3 + field] : asm[12])
        guard offset + 8 <= bytes.count else { return .fail("asm offset \(offset) past the block") }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        if value != 0x1001 + UInt64(field) {
          return .fail("field \(field): asm offset \(offset) holds \(hex: value) in Swift's layout")
        }
      }
      return .pass
    }
  }
}

/// The calibrated TSC agrees with the ACPI PM timer, a clock on another crystal,
/// measured again now, well after calibration.
enum ClockCheck {
  /// Largest disagreement accepted, in parts per thousand. QEMU derives both timers
  /// from the host clock; the slack absorbs host scheduling during the window.
  static let tolerancePerMille: UInt64 = 20

  static func run() -> TestResult {
    guard PMTimer.isAvailable else { return .skip("no PM timer in the FADT") }
    guard Clock.isCalibrated else { return .fail("the TSC was never calibrated") }
    var best = UInt64.max
    for _ in 0..<3 {
      guard let ticks = PMTimer.measureTicks(milliseconds: 20) else {
        return .fail("the PM timer did not advance 20 ms")
      }
      best = min(best, Clock.distancePerMille(ticks / 20, Clock.ticksPerMillisecond))
    }
    KTAP.diagnostic("TSC \(Clock.ticksPerMillisecond) ticks/ms; PM timer agrees within \(best) per mille")
    return best <= tolerancePerMille ? .pass : .fail("TSC and PM timer disagree by \(best) per mille")
  }
}

/// posix_memalign honours alignment, and freed memory returns to the heap.
enum HeapCheck {
  static func run() -> TestResult {
    let before = KernelHeap.bytesInUse
    var pointers: [UnsafeMutableRawPointer] = []
    pointers.reserveCapacity(16)
    var alignment = 16
    while alignment <= 16384 {
      var result: UnsafeMutableRawPointer? = nil
      guard posixMemalign(&result, alignment, 24) == 0, let pointer = result else {
        return .fail("posix_memalign(\(alignment), 24) failed")
      }
      guard UInt(bitPattern: pointer) % UInt(alignment) == 0 else {
        return .fail("posix_memalign(\(alignment)) gave \(hex: UInt64(UInt(bitPattern: pointer)))")
      }
      pointers.append(pointer)
      alignment *= 2
    }
    for pointer in pointers { cFree(pointer) }
    pointers = []
    let after = KernelHeap.bytesInUse
    return after == before ? .pass : .fail("heap use \(before) before, \(after) after freeing")
  }
}
