/// The C symbols Embedded Swift's runtime and generated code call (docs/architecture.md,
/// "Build facts"): allocation over `KernelHeap`, and a seed source for hashing.
/// `free`, memset, memcpy and memmove are `rep stosb` / `rep movsb` in Boot/cpu.asm: written in
/// Swift, LLVM would recognise the loops and compile them into calls to themselves.

@c(posix_memalign)
func posixMemalign(
  _ result: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ alignment: Int, _ size: Int
) -> Int32 {
  guard alignment >= MemoryLayout<UnsafeRawPointer>.size, alignment & (alignment - 1) == 0
  else { return 22 }  // EINVAL
  guard let pointer = KernelHeap.tryAllocate(bytes: size, alignment: alignment) else {
    return 12  // ENOMEM
  }
  result.pointee = pointer
  return 0
}

/// C's free(); Boot/cpu.asm's `free` jumps here (Swift may not define `free` itself:
/// the name is reserved for the runtime's own use).
@c(kernel_free)
func cFree(_ pointer: UnsafeMutableRawPointer?) {
  KernelHeap.free(pointer)
}

/// Embedded Swift seeds hashing with this. The kernel has no entropy source it trusts
/// yet, so it mixes the TSC: good enough for hash seeds, not for secrets.
@c(arc4random_buf)
func arc4randomBuf(_ buffer: UnsafeMutableRawPointer, _ count: Int) {
  var state = CPUInstructions.readTSC() | 1
  for index in 0..<count {
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    buffer.storeBytes(of: UInt8(truncatingIfNeeded: state), toByteOffset: index, as: UInt8.self)
  }
}
