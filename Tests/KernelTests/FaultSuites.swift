import Synchronization

/// Suites that crash on purpose, so the harness can check the panic report and the exit
/// status of a crash (`ktest=fault_ud`, `fault_pf`, `fault_triple`,
/// `fault_stack_overflow`). Each one's only case never returns; the harness expects the
/// report, not a KTAP result.
enum FaultSuites {
  /// An address no page table maps: PML4 entry 0 covers it, but only the first 4 of
  /// its 512 PDPT entries are present (Boot/boot.asm).
  static let unmappedAddress: UInt64 = 0x0000_0050_DEAD_B000

  static let invalidOpcode = KernelTestSuite(
    name: "fault_ud",
    cases: [
      KernelTestCase(name: "ud2_panics") {
        CPUInstructions.invalidOpcode()
        return .fail("ud2 returned")
      }
    ])

  static let pageFault = KernelTestSuite(
    name: "fault_pf",
    cases: [
      KernelTestCase(name: "unmapped_read_panics") {
        let pointer = UnsafeMutablePointer<UInt64>(bitPattern: UInt(unmappedAddress))!
        let value = pointer.pointee
        return .fail("read \(hex: value) from an unmapped address")
      }
    ])

  /// A stop_machine whose function holds CPU 0 in RUN for 5 s while every other CPU
  /// waits there with interrupts off: with `stop_timeout_ms=500` a waiting CPU reports
  /// the stall at 50 ms naming CPU 0, then panics at 500 ms. Every wait is bounded.
  static let stopStall = KernelTestSuite(
    name: "fault_stop_stall",
    cases: [
      KernelTestCase(name: "stop_stall_panics") {
        do throws(StopError) {
          try StopperThreads.stoppers.stopMachine(holdFiveSeconds, cpus: CPUSet([.boot]))
        } catch {
          return .fail("stop_machine failed")
        }
        return .fail("the stalled stop_machine returned instead of panicking")
      }
    ])

  private static let holdFiveSeconds: StopFunction = { _ in
    let start = Clock.nanoseconds()
    while Clock.nanoseconds() - start < 5_000_000_000 { CPUInstructions.pause() }
    return 0
  }

  static let tripleFault = KernelTestSuite(
    name: "fault_triple",
    cases: [
      KernelTestCase(name: "empty_idt_resets") {
        CPUInstructions.tripleFault()
        return .fail("the machine did not reset")
      }
    ])

  /// Unbounded recursion on a guarded stack owned by test_overflow/0: it must end in
  /// the guard page and a report naming the stack, not a double or triple fault.
  static let stackOverflow = KernelTestSuite(
    name: "fault_stack_overflow",
    cases: [
      KernelTestCase(name: "recursion_hits_the_guard") {
        guard let stack = GuardedStacks.allocate(pages: 4, owner: "test_overflow", number: 0) else {
          return .fail("could not allocate a guarded stack")
        }
        CPUInstructions.callOnStack(top: stack.top, recurseWithoutEnd, nil)
        return .fail("recursion on a 4-page stack returned (depth \(depthSink.load(ordering: .relaxed)))")
      }
    ])

  /// A kernel thread on the last CPU recurses without end: the report must name the
  /// thread (`overflow-thread/N`), whose stack it overflowed.
  static let threadStackOverflow = KernelTestSuite(
    name: "fault_thread_overflow",
    cases: [
      KernelTestCase(name: "thread_overflow_names_the_thread") {
        let cpu = CPUs.online.reversed().first!
        let finished = Completion<X86_64Platform>()
        Threads.start(
          Threads.create(
            ThreadName("overflow-thread", cpu.rawValue), on: cpu, function: recurseWithoutEnd, argument: nil))
        finished.wait(in: Threads.scheduler)  // never completed: the panic ends the boot
        return .fail("woke up after the overflowing thread")
      }
    ])
}

/// Where every frame of `recurse` publishes its buffer's address and its result, so
/// the optimizer must keep a buffer in each frame and work after each call: the
/// recursion cannot become a loop.
private let depthSink = Atomic<UInt64>(0)

let recurseWithoutEnd: @convention(c) (UnsafeMutableRawPointer?) -> Void = { _ in
  depthSink.store(recurse(1), ordering: .relaxed)
}

/// Recurses until 2^40 frames deep (far beyond any stack): 64 bytes of buffer per
/// frame, written through a pointer that escapes.
@inline(never)
private func recurse(_ depth: UInt64) -> UInt64 {
  if depth >= 1 << 40 { return depth }
  var frame: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (depth, 0, 0, 0, 0, 0, 0, 0)
  withUnsafeMutablePointer(to: &frame) { pointer in
    depthSink.store(UInt64(UInt(bitPattern: pointer)), ordering: .relaxed)
  }
  let deeper = recurse(depth + 1)
  depthSink.store(deeper, ordering: .relaxed)
  return deeper &+ frame.0 &+ frame.7
}
