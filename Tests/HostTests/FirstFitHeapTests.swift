import LockstepKernel
import Testing

/// The kernel heap's algorithm (Kernel/Runtime) on host memory: alignment, splitting,
/// coalescing, running out, and refusing pointers it never handed out.
@Suite("FirstFitHeap")
struct FirstFitHeapTests {
  /// Runs `body` with a heap over `size` bytes of host memory.
  private func withHeap(size: Int = 64 * 1024, _ body: (inout FirstFitHeap, UInt) -> Void) {
    let memory = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
    defer { memory.deallocate() }
    var heap = FirstFitHeap()
    let start = UInt(bitPattern: memory)
    heap.initialize(start: start, end: start + UInt(size))
    body(&heap, start)
  }

  @Test(arguments: [16, 64, 256, 4096])
  func allocationsHonourTheirAlignment(alignment: Int) {
    withHeap { heap, _ in
      var pointers: [UnsafeMutableRawPointer] = []
      for size in [1, 24, 100, 1000] {
        let pointer = heap.allocate(bytes: size, alignment: alignment)
        #expect(pointer != nil)
        if let pointer {
          #expect(UInt(bitPattern: pointer) % UInt(alignment) == 0)
          pointer.initializeMemory(as: UInt8.self, repeating: 0xAB, count: size)
          pointers.append(pointer)
        }
      }
      for pointer in pointers {
        let freed = heap.free(pointer)
        #expect(freed)
      }
      let inUse = heap.bytesInUse
      #expect(inUse == 0)
    }
  }

  @Test func freedBlocksCoalesceBackIntoOneThatFitsEverything() {
    withHeap(size: 16 * 1024) { heap, _ in
      let capacity = heap.capacity
      let blocks = (0..<8).compactMap { _ in heap.allocate(bytes: 1000, alignment: 16) }
      #expect(blocks.count == 8)
      var freed = 0
      for (index, block) in blocks.enumerated() where index % 2 == 0 && heap.free(block) { freed += 1 }
      for (index, block) in blocks.enumerated() where index % 2 == 1 && heap.free(block) { freed += 1 }
      let inUse = heap.bytesInUse
      #expect(freed == 8 && inUse == 0)
      let whole = heap.allocate(bytes: capacity - 16, alignment: 16)
      #expect(whole != nil, "after freeing everything one block spans the heap again")
    }
  }

  @Test func runningOutGivesNil() {
    withHeap(size: 4096) { heap, _ in
      let tooBig = heap.allocate(bytes: 8192, alignment: 16)
      let fits = heap.allocate(bytes: 1024, alignment: 16)
      #expect(tooBig == nil && fits != nil)
    }
  }

  @Test func freeRefusesPointersItNeverHandedOut() {
    withHeap { heap, start in
      let block = heap.allocate(bytes: 64, alignment: 16)!
      let inUse = heap.bytesInUse
      let header = heap.free(UnsafeMutableRawPointer(bitPattern: start + 8)!)
      let outside = heap.free(UnsafeMutableRawPointer(bitPattern: 0x10)!)
      let after = heap.bytesInUse
      let null = heap.free(nil)
      let real = heap.free(block)
      #expect(!header, "inside the header area")
      #expect(!outside, "outside the heap")
      #expect(after == inUse, "a refused free changes nothing")
      #expect(null, "free(NULL) is a no-op, as in C")
      #expect(real)
    }
  }
}
