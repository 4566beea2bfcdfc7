/// The kernel heap: first fit over an address-ordered free list, with coalescing.
///
/// Every allocation is preceded by a 16-byte header holding the start and size of the
/// block it was carved from, so `free` needs no size and any alignment can be honoured:
/// the payload is placed at the first suitably aligned address in a free block, and the
/// slack before it is returned to the free list when it is large enough to be a block.
/// Free blocks hold their own list node (next, size). All sizes are multiples of 16.
///
/// Allocation is for initialisation: IRQ, NMI and stop paths never allocate (DESIGN.md).
enum KernelHeap {
  private struct FreeBlock {
    var next: UnsafeMutablePointer<FreeBlock>?
    var size: Int
  }

  private static let granule = 16
  private static let headerSize = 16
  private static let minimumBlock = 32

  nonisolated(unsafe) private static var freeList: UnsafeMutablePointer<FreeBlock>? = nil
  nonisolated(unsafe) private static var regionStart: UInt = 0
  nonisolated(unsafe) private static var regionEnd: UInt = 0
  /// Bytes handed out and not yet freed, headers and slack included.
  nonisolated(unsafe) private(set) static var bytesInUse = 0
  private static let lock = SpinLock<X86_64Platform>("heap")

  /// Hands the heap the memory [start, end). Boot CPU, once, before any allocation.
  static func initialize(start: UInt, end: UInt) {
    let alignedStart = (start + UInt(granule - 1)) & ~UInt(granule - 1)
    regionStart = alignedStart
    regionEnd = end & ~UInt(granule - 1)
    let block = UnsafeMutablePointer<FreeBlock>(bitPattern: alignedStart)!
    block.initialize(to: FreeBlock(next: nil, size: Int(regionEnd - alignedStart)))
    freeList = block
  }

  /// Total bytes the heap manages.
  static var capacity: Int { Int(regionEnd - regionStart) }

  /// Allocates `bytes` aligned to `alignment` (a power of two), or nil when no free
  /// block fits. Not from IRQ or NMI context.
  static func tryAllocate(bytes: Int, alignment: Int) -> UnsafeMutableRawPointer? {
    precondition(alignment > 0 && alignment & (alignment - 1) == 0, "alignment")
    let size = max(round(bytes), granule)
    let align = UInt(max(alignment, granule))
    return lock.withLock { () -> UnsafeMutableRawPointer? in
      var previous: UnsafeMutablePointer<FreeBlock>? = nil
      var cursor = freeList
      while let block = cursor {
        if let payload = carve(block, previous: previous, size: size, align: align) {
          return payload
        }
        previous = block
        cursor = block.pointee.next
      }
      return nil
    }
  }

  /// As `tryAllocate`, but running out of memory is fatal.
  static func allocate(bytes: Int, alignment: Int) -> UnsafeMutableRawPointer {
    guard let pointer = tryAllocate(bytes: bytes, alignment: alignment) else {
      Panic.halt("heap: out of memory allocating \(bytes) bytes (\(bytesInUse) in use)")
    }
    return pointer
  }

  /// Tries to place `size` bytes at `align` inside `block`; unlinks and splits on success.
  private static func carve(
    _ block: UnsafeMutablePointer<FreeBlock>, previous: UnsafeMutablePointer<FreeBlock>?,
    size: Int, align: UInt
  ) -> UnsafeMutableRawPointer? {
    let start = UInt(bitPattern: block)
    let end = start + UInt(block.pointee.size)
    var payload = (start + UInt(headerSize) + align - 1) & ~(align - 1)
    // Slack in front too small to stand alone as a free block: skip to a later spot.
    if payload - UInt(headerSize) != start && payload - UInt(headerSize) - start < UInt(minimumBlock) {
      payload += align * ((UInt(minimumBlock) + align - 1) / align)
    }
    guard payload + UInt(size) <= end else { return nil }
    var usedEnd = payload + UInt(size)
    if end - usedEnd < UInt(minimumBlock) { usedEnd = end }  // absorb a tiny tail
    let next = block.pointee.next
    unlink(block, previous: previous, replacement: next)
    let usedStart = payload - UInt(headerSize)
    if usedStart > start { insert(start, size: Int(usedStart - start)) }
    if end > usedEnd { insert(usedEnd, size: Int(end - usedEnd)) }
    let header = UnsafeMutablePointer<UInt>(bitPattern: usedStart)!
    header[0] = usedStart
    header[1] = usedEnd - usedStart
    bytesInUse += Int(usedEnd - usedStart)
    return UnsafeMutableRawPointer(bitPattern: payload)
  }

  /// Returns an allocation to the heap. Null is ignored, as C's free does.
  static func free(_ pointer: UnsafeMutableRawPointer?) {
    guard let pointer else { return }
    let header = UnsafeMutablePointer<UInt>(bitPattern: UInt(bitPattern: pointer) - UInt(headerSize))!
    let start = header[0]
    let size = header[1]
    guard start >= regionStart, start + size <= regionEnd, start < UInt(bitPattern: pointer)
    else {
      Panic.halt("heap: free of \(hex: UInt64(UInt(bitPattern: pointer))) with a bad header")
    }
    lock.withLock {
      bytesInUse -= Int(size)
      insert(start, size: Int(size))
    }
  }

  private static func unlink(
    _ block: UnsafeMutablePointer<FreeBlock>, previous: UnsafeMutablePointer<FreeBlock>?,
    replacement: UnsafeMutablePointer<FreeBlock>?
  ) {
    if let previous { previous.pointee.next = replacement } else { freeList = replacement }
  }

  /// Inserts [address, address + size) in address order, merging with its neighbours.
  /// Caller holds the lock.
  private static func insert(_ address: UInt, size: Int) {
    var previous: UnsafeMutablePointer<FreeBlock>? = nil
    var cursor = freeList
    while let block = cursor, UInt(bitPattern: block) < address {
      previous = block
      cursor = block.pointee.next
    }
    let block = UnsafeMutablePointer<FreeBlock>(bitPattern: address)!
    block.initialize(to: FreeBlock(next: cursor, size: size))
    if let next = cursor, address + UInt(size) == UInt(bitPattern: next) {
      block.pointee.size += next.pointee.size
      block.pointee.next = next.pointee.next
    }
    if let previous {
      previous.pointee.next = block
      if UInt(bitPattern: previous) + UInt(previous.pointee.size) == address {
        previous.pointee.size += block.pointee.size
        previous.pointee.next = block.pointee.next
      }
    } else {
      freeList = block
    }
  }

  private static func round(_ bytes: Int) -> Int { (bytes + granule - 1) & ~(granule - 1) }
}
