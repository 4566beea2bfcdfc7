/// The Multiboot v1 information structure the loader leaves in memory
/// (Multiboot Specification 0.6.96, §3.3 "Boot information format").
struct MultibootInfo {
  /// The value EAX holds when a Multiboot loader enters the kernel.
  static let bootMagic: UInt32 = 0x2BAD_B002

  private static let flagCommandLine: UInt32 = 1 << 2
  private static let flagMemoryMap: UInt32 = 1 << 6
  private static let structureSize = 88

  /// One memory-map entry; `type == 1` is usable RAM.
  struct Region {
    var base: UInt64
    var length: UInt64
    var type: UInt32
    var end: UInt64 { base + length }
    var isUsable: Bool { type == 1 }
  }

  let address: UInt64
  private var raw: UnsafeRawPointer { UnsafeRawPointer(bitPattern: UInt(address))! }
  private var flags: UInt32 { raw.loadUnaligned(as: UInt32.self) }

  init(address: UInt64) { self.address = address }

  /// The command line as bytes (without its NUL), or empty.
  var commandLine: UnsafeRawBufferPointer {
    guard flags & Self.flagCommandLine != 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    let start = UnsafePointer<UInt8>(
      bitPattern: UInt(raw.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))!
    var length = 0
    while length < 4096 && start[length] != 0 { length += 1 }
    return UnsafeRawBufferPointer(start: start, count: length)
  }

  /// Calls `body` for each memory-map entry, in the loader's order.
  func forEachRegion(_ body: (Region) -> Void) {
    guard flags & Self.flagMemoryMap != 0 else { return }
    let length = Int(raw.loadUnaligned(fromByteOffset: 44, as: UInt32.self))
    let base = UInt(raw.loadUnaligned(fromByteOffset: 48, as: UInt32.self))
    var offset = 0
    while offset + 24 <= length {
      let entry = UnsafeRawPointer(bitPattern: base + UInt(offset))!
      let size = Int(entry.loadUnaligned(as: UInt32.self))
      body(
        Region(
          base: entry.loadUnaligned(fromByteOffset: 4, as: UInt64.self),
          length: entry.loadUnaligned(fromByteOffset: 12, as: UInt64.self),
          type: entry.loadUnaligned(fromByteOffset: 20, as: UInt32.self)))
      offset += size + 4  // `size` does not count itself
    }
  }

  /// The highest address used by the structure, its command line and its memory map:
  /// QEMU places them right after the kernel image, so the heap starts beyond this.
  var highestAddressUsed: UInt64 {
    var highest = address + UInt64(Self.structureSize)
    if flags & Self.flagCommandLine != 0 {
      let line = commandLine
      highest = max(highest, UInt64(UInt(bitPattern: line.baseAddress)) + UInt64(line.count) + 1)
    }
    if flags & Self.flagMemoryMap != 0 {
      let length = UInt64(raw.loadUnaligned(fromByteOffset: 44, as: UInt32.self))
      let base = UInt64(raw.loadUnaligned(fromByteOffset: 48, as: UInt32.self))
      highest = max(highest, base + length)
    }
    return highest
  }
}
