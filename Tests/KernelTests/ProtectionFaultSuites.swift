/// Suites that break W^X or overflow a stack on purpose (`ktest=fault_write_text`,
/// `fault_exec_heap`, `fault_boot_stack_overflow`, `fault_ap_stack_overflow`,
/// `fault_nmi_stack_overflow`). Each ends in a panic report, which the harness checks
/// names the access, the memory and, for a stack, whose stack and which CPU; a double or
/// triple fault, or a case that returns, fails.
enum ProtectionFaultSuites {
  static let all = [writeText, executeHeap, bootStackOverflow, apStackOverflow, nmiStackOverflow]

  /// A store into kernel text: a page fault, "write to a read-only page".
  static let writeText = KernelTestSuite(
    name: "fault_write_text",
    cases: [
      KernelTestCase(name: "write_to_text_panics") {
        let code = UnsafeMutablePointer<UInt8>(bitPattern: UInt(KernelSymbols.apEntry))!
        code.pointee = 0xCC  // int3
        return .fail("wrote to kernel text at \(hex: KernelSymbols.apEntry)")
      }
    ])

  /// A call into a heap page holding `ret`: a page fault, "instruction fetch from a
  /// no-execute page".
  static let executeHeap = KernelTestSuite(
    name: "fault_exec_heap",
    cases: [
      KernelTestCase(name: "call_into_heap_panics") {
        let page = KernelHeap.allocate(bytes: 4096, alignment: 4096)
        page.storeBytes(of: 0xC3, as: UInt8.self)  // ret
        let function = unsafeBitCast(page, to: (@convention(c) () -> Void).self)
        function()
        return .fail("ran code from the heap at \(hex: UInt64(UInt(bitPattern: page)))")
      }
    ])

  /// Recursion on the boot CPU's own stack (the test runs on `main`, which is the boot
  /// flow on boot.asm's stack): its guard page is in the image, left unmapped.
  static let bootStackOverflow = KernelTestSuite(
    name: "fault_boot_stack_overflow",
    cases: [
      KernelTestCase(name: "boot_stack_recursion_hits_the_guard") {
        recurseWithoutEnd(nil)
        return .fail("recursion on the boot stack returned")
      }
    ])

  /// Recursion in a cross-call on the last CPU, an AP, which is idle: the call runs on
  /// the stack it was interrupted on, its own (the trampoline's pool, `ap-stack/N`).
  static let apStackOverflow = KernelTestSuite(
    name: "fault_ap_stack_overflow",
    cases: [
      KernelTestCase(name: "ap_stack_recursion_hits_the_guard") {
        guard let cpu = CPUs.online.reversed().first, cpu != .boot else { return .skip("no AP online") }
        do throws(CrossCallError) {
          try X86_64Platform.calls.callSingle(on: cpu, recurseWithoutEnd, nil, wait: false)
        } catch {
          return .fail("the call to CPU \(cpu) was refused")
        }
        return waitForThePanic(of: cpu)
      }
    ])

  /// Recursion in the NMI handler of the last CPU: the NMI's IST stack overflows into
  /// its guard page, and the page fault's own IST stack carries the report.
  static let nmiStackOverflow = KernelTestSuite(
    name: "fault_nmi_stack_overflow",
    cases: [
      KernelTestCase(name: "nmi_recursion_hits_the_guard") {
        guard let cpu = CPUs.online.reversed().first, cpu != .boot else { return .skip("no AP online") }
        NMI.testOnlyHandler = recurseInNMI
        IPI.sendNMI(to: cpu)
        return waitForThePanic(of: cpu)
      }
    ])

  /// The panic on `cpu` ends the machine; returning from here means it did not come
  /// within 5 s.
  private static func waitForThePanic(of cpu: CPUIndex) -> TestResult {
    let start = Clock.nanoseconds()
    while Clock.nanoseconds() - start < 5_000_000_000 { CPUInstructions.pause() }
    return .fail("CPU \(cpu) did not panic within 5 s")
  }
}

private let recurseInNMI: @convention(c) () -> Void = { recurseWithoutEnd(nil) }
