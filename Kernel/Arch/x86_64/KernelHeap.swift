/// The kernel heap: `FirstFitHeap` (Kernel/Runtime) over the memory `BootMemory` gives
/// it, behind a spinlock, with running out of memory as a panic.
///
/// Allocation is for initialisation: IRQ, NMI and stop paths never allocate (a CPU
/// stopped while holding this lock would hang every CPU that allocates after it).
enum KernelHeap {
  nonisolated(unsafe) private static var heap = FirstFitHeap()
  private static let lock = SpinLock<X86_64Platform>("heap")

  /// Hands the heap the memory [start, end). Boot CPU, once, before any allocation.
  static func initialize(start: UInt, end: UInt) {
    lock.withLock { heap.initialize(start: start, end: end) }
  }

  /// Total bytes the heap manages.
  static var capacity: Int { lock.withLock { heap.capacity } }

  /// Bytes handed out and not yet freed, headers and slack included.
  static var bytesInUse: Int { lock.withLock { heap.bytesInUse } }

  /// Allocates `bytes` aligned to `alignment` (a power of two), or nil when no free
  /// block fits. Not from IRQ or NMI context.
  static func tryAllocate(bytes: Int, alignment: Int) -> UnsafeMutableRawPointer? {
    lock.withLock { heap.allocate(bytes: bytes, alignment: alignment) }
  }

  /// As `tryAllocate`, but running out of memory is fatal.
  static func allocate(bytes: Int, alignment: Int) -> UnsafeMutableRawPointer {
    guard let pointer = tryAllocate(bytes: bytes, alignment: alignment) else {
      Panic.halt("heap: out of memory allocating \(bytes) bytes (\(bytesInUse) in use)")
    }
    return pointer
  }

  /// Returns an allocation to the heap. Null is ignored, as C's free does; a pointer
  /// the heap never handed out is fatal.
  static func free(_ pointer: UnsafeMutableRawPointer?) {
    guard lock.withLock({ heap.free(pointer) }) else {
      Panic.halt("heap: free of \(hex: UInt64(UInt(bitPattern: pointer))) with a bad header")
    }
  }

  /// Test only (`sendstop` suite, `heap_lock`): runs `body` holding the heap's lock, as
  /// an allocation in progress would, so that a stop can catch a CPU there.
  static func testOnlyHoldingLock(_ body: () -> Void) {
    lock.withLock(body)
  }
}
