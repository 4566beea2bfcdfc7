/// Memory at boot: the Multiboot memory map, and the heap carved from it.
enum BootMemory {
  /// The heap ends here at most: the identity map covers 4 GiB and the top GiB is MMIO.
  private static let heapCeiling: UInt64 = 0xC000_0000

  /// Logs the memory map and gives the heap the usable region that holds the kernel,
  /// from past everything the loader placed after the image.
  static func setUpHeap(_ multiboot: MultibootInfo) {
    let kernelStart = KernelSymbols.kernelStart
    let start = max(KernelSymbols.kernelEnd, multiboot.highestAddressUsed)
    var end: UInt64 = 0
    var trampolineIsFree = false
    multiboot.forEachRegion { region in
      log("mem: [\(hex: region.base, digits: 9), \(hex: region.end, digits: 9)) type \(region.type)")
      if region.isUsable && region.base <= kernelStart && kernelStart < region.end {
        end = min(region.end, heapCeiling)
      }
      if region.isUsable && region.base <= Trampoline.base
        && Trampoline.end <= region.end
      {
        trampolineIsFree = true
      }
    }
    guard end > start + 1024 * 1024 else {
      Panic.halt("mem: no usable region holds the kernel with room for a heap")
    }
    guard trampolineIsFree else {
      Panic.halt(
        "mem: the AP trampoline pages \(hex: Trampoline.base)-\(hex: Trampoline.end) are not usable RAM"
      )
    }
    KernelHeap.initialize(start: UInt(start), end: UInt(end))
    log("mem: heap \(hex: start)-\(hex: end) (\((end - start) / 1024) KiB)")
  }
}

/// The kernel command line.
enum BootCommandLine {
  /// Parses the Multiboot command line, reporting unknown and malformed parameters.
  /// The first word is the image's path and is skipped: QEMU's `-kernel` puts it there;
  /// GRUB 2 does not, so the ISO's grub.cfg names it (scripts/iso.sh).
  static func parse(_ multiboot: MultibootInfo, extraKeys: [BootParameterKey]) -> BootParameters {
    let line = multiboot.commandLine
    var start = 0
    while start < line.count && line[start] != UInt8(ascii: " ") { start += 1 }
    let arguments = UnsafeRawBufferPointer(rebasing: line[start...])
    log("cmdline:\(bytes: arguments)")
    let parameters = BootParameters.parse(arguments, extraKeys: extraKeys)
    for diagnostic in parameters.diagnostics { log("cmdline: \(line: describe(diagnostic))") }
    return parameters
  }

  static func describe(_ diagnostic: BootParameterDiagnostic) -> LogLine {
    switch diagnostic {
    case .unknown(let name): "unknown parameter '\(bytes: name)' ignored"
    case .malformed(let name, let value): "\(bytes: name)=\(bytes: value): malformed value, default kept"
    case .outOfRange(let name, let value): "\(bytes: name)=\(value): out of range, default kept"
    case .unexpectedValue(let name): "\(bytes: name) takes no value; treated as given"
    case .missingValue(let name): "\(bytes: name) needs a value (\(bytes: name)=N); ignored"
    }
  }
}
