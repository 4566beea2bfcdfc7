/// A first-fit heap over an address-ordered free list, with coalescing: the algorithm
/// behind the kernel heap (`KernelHeap` in Kernel/Arch adds the lock and the panic on
/// running out), portable so the host tests run it on memory of their own.
///
/// Every allocation is preceded by a 16-byte header holding the start and size of the
/// block it was carved from, so `free` needs no size and any alignment can be honoured:
/// the payload is placed at the first suitably aligned address in a free block, and the
/// slack before it is returned to the free list when it is large enough to be a block.
/// Free blocks hold their own list node (next, size). All sizes are multiples of 16.
///
/// Not thread-safe: the owner serialises every call. Allocation is for initialisation:
/// IRQ, NMI and stop paths never allocate (docs/architecture.md).
public struct FirstFitHeap: ~Copyable {
  private struct FreeBlock {
    var next: UnsafeMutablePointer<FreeBlock>?
    var size: Int
  }

  private static let granule = 16
  private static let headerSize = 16
  private static let minimumBlock = 32

  private var freeList: UnsafeMutablePointer<FreeBlock>? = nil
  private var regionStart: UInt = 0
  private var regionEnd: UInt = 0
  /// Bytes handed out and not yet freed, headers and slack included.
  public private(set) var bytesInUse = 0

  /// A heap with no memory yet: every allocation fails until `initialize`.
  public init() {}

  /// Hands the heap the memory [start, end). Once, before any allocation.
  public mutating func initialize(start: UInt, end: UInt) {
    let alignedStart = (start + UInt(Self.granule - 1)) & ~UInt(Self.granule - 1)
    regionStart = alignedStart
    regionEnd = end & ~UInt(Self.granule - 1)
    let block = UnsafeMutablePointer<FreeBlock>(bitPattern: alignedStart)!
    block.initialize(to: FreeBlock(next: nil, size: Int(regionEnd - alignedStart)))
    freeList = block
  }

  /// Total bytes the heap manages.
  public var capacity: Int { Int(regionEnd - regionStart) }

  /// Allocates `bytes` aligned to `alignment` (a power of two), or nil when no free
  /// block fits.
  public mutating func allocate(bytes: Int, alignment: Int) -> UnsafeMutableRawPointer? {
    precondition(alignment > 0 && alignment & (alignment - 1) == 0, "alignment")
    let size = max(Self.round(bytes), Self.granule)
    let align = UInt(max(alignment, Self.granule))
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

  /// Tries to place `size` bytes at `align` inside `block`; unlinks and splits on success.
  private mutating func carve(
    _ block: UnsafeMutablePointer<FreeBlock>, previous: UnsafeMutablePointer<FreeBlock>?,
    size: Int, align: UInt
  ) -> UnsafeMutableRawPointer? {
    let start = UInt(bitPattern: block)
    let end = start + UInt(block.pointee.size)
    let headerSize = UInt(Self.headerSize)
    let minimumBlock = UInt(Self.minimumBlock)
    var payload = (start + headerSize + align - 1) & ~(align - 1)
    // Slack in front too small to stand alone as a free block: skip to a later spot.
    if payload - headerSize != start && payload - headerSize - start < minimumBlock {
      payload += align * ((minimumBlock + align - 1) / align)
    }
    guard payload + UInt(size) <= end else { return nil }
    var usedEnd = payload + UInt(size)
    if end - usedEnd < minimumBlock { usedEnd = end }  // absorb a tiny tail
    let next = block.pointee.next
    unlink(block, previous: previous, replacement: next)
    let usedStart = payload - headerSize
    if usedStart > start { insert(start, size: Int(usedStart - start)) }
    if end > usedEnd { insert(usedEnd, size: Int(end - usedEnd)) }
    let header = UnsafeMutablePointer<UInt>(bitPattern: usedStart)!
    header[0] = usedStart
    header[1] = usedEnd - usedStart
    bytesInUse += Int(usedEnd - usedStart)
    return UnsafeMutableRawPointer(bitPattern: payload)
  }

  /// Returns an allocation to the heap. Null is ignored, as C's free does. Returns
  /// false, changing nothing, when the block's header does not describe a block of
  /// this heap (a wild or twice-freed pointer).
  public mutating func free(_ pointer: UnsafeMutableRawPointer?) -> Bool {
    guard let pointer else { return true }
    let address = UInt(bitPattern: pointer)
    guard address >= regionStart + UInt(Self.headerSize), address < regionEnd else { return false }
    let header = UnsafeMutablePointer<UInt>(bitPattern: address - UInt(Self.headerSize))!
    let start = header[0]
    let size = header[1]
    guard start >= regionStart, start < address, size <= regionEnd - start, address < start + size else {
      return false
    }
    bytesInUse -= Int(size)
    insert(start, size: Int(size))
    return true
  }

  private mutating func unlink(
    _ block: UnsafeMutablePointer<FreeBlock>, previous: UnsafeMutablePointer<FreeBlock>?,
    replacement: UnsafeMutablePointer<FreeBlock>?
  ) {
    if let previous { previous.pointee.next = replacement } else { freeList = replacement }
  }

  /// Inserts [address, address + size) in address order, merging with its neighbours.
  private mutating func insert(_ address: UInt, size: Int) {
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
