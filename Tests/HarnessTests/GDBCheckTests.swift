import HarnessKit
import Testing

// The gdb check's command line and its judgement of gdb's output (a real run's, trimmed).

@Suite("GDB check")
struct GDBCheckTests {
  static let goodOutput = """
    The target architecture is set to "i386:x86-64".
    0x000000000000fff0 in ?? ()
    Panic.exception is $e6Kernel5PanicO9exceptionys5NeverOSpyAA14InterruptFrameVGFZ
    Breakpoint 1 at 0x10b5aa: file Kernel/Arch/x86_64/Panic.swift, line 66.

    Thread 1 hit Breakpoint 1, readCR2 () at Kernel/Arch/x86_64/Instructions.swift:61
    61	  static func readCR2() -> UInt64 { cpu_read_cr2() }
    ==== backtrace
    #0  readCR2 () at Kernel/Arch/x86_64/Instructions.swift:61
    #1  static Panic.exception(_:) () at Kernel/Arch/x86_64/Panic.swift:66
    #2  0x000000000010a9af in interruptDispatch () at Kernel/Arch/x86_64/Interrupts.swift:54
    #3  0x0000000000100c1f in isr_common () at Boot/interrupts.asm:57
    #4  0x000000000010014d in cpu_invalid_opcode () at Boot/cpu.asm:120
    #5  0x0000000000137d07 in closure #1 in variable initialization expression of static FaultSuites.invalidOpcode ()
    #6  0x0000000000149089 in static KTAP.run(_:number:) () at Tests/KernelTests/KTAP.swift:38
    ==== cpus
    2 possible CPU(s), per-CPU blocks at 0x1dc300, 544 bytes each
    CPU 0   APIC 0   online    (attempt 0)  block 0x1dc300
    CPU 1   APIC 1   online    (attempt 8)  block 0x1dc520
    ==== end
    """

  @Test func argumentsAreBatchWithABoundedConnect() {
    let arguments = GDBCheck.gdbArguments(
      elf: "build/kernel.elf", commandFile: "scripts/gdb/lockstep.py", port: 4321)
    #expect(Array(arguments.prefix(2)) == ["-batch", "-nx"])
    #expect(arguments.contains("target remote 127.0.0.1:4321"))
    #expect(arguments.contains("set tcp connect-timeout \(GDBCheck.connectTimeout)"))
    #expect(arguments.contains("lockstep-break Panic.exception"))
    #expect(GDBCheck.config(port: 4321).qemuArguments == ["-S", "-gdb", "tcp:127.0.0.1:4321"])
  }

  @Test func goodOutputPassesEveryCheck() {
    let checks = GDBCheck.judge(Self.goodOutput)
    #expect(checks.count == 8)
    #expect(checks.allSatisfy { $0.failure == nil }, "\(checks.filter { $0.failure != nil })")
  }

  @Test func mangledOrLinelessFramesFail() {
    let output = Self.goodOutput
      .replacingOccurrences(of: "static Panic.exception(_:) () at Kernel/Arch/x86_64/Panic.swift:66",
                            with: "$e6Kernel5PanicO9exceptionys5NeverOSpyAA14InterruptFrameVGFZ ()")
      .replacingOccurrences(of: " at Boot/cpu.asm:120", with: "")
    let failed = GDBCheck.judge(output).filter { $0.failure != nil }.map(\.name)
    #expect(failed.count == 2)
    #expect(failed.contains { $0.contains("Panic.exception") })
    #expect(failed.contains { $0.contains("cpu_invalid_opcode") })
  }

  @Test func noConnectionFailsWithGdbsMessage() {
    let output = "127.0.0.1:4321: Connection timed out.\nThe program is not being run.\n"
    let checks = GDBCheck.judge(output)
    #expect(checks.first?.failure?.contains("Connection timed out") == true)
    #expect(checks.allSatisfy { $0.failure != nil })
  }

  @Test func optionsParse() throws {
    let invocation = try Invocation.parse(["gdb", "--kernel", "k32", "--elf", "k64"])
    guard case .gdb(let options) = invocation else {
      Issue.record("not gdb")
      return
    }
    #expect(options.elf == "k64" && options.gdb == "gdb")
    #expect(options.commandFile == "scripts/gdb/lockstep.py")
    #expect(options.common.command.kernel == "k32")
  }
}
