/// The kernel image's entry point, called by Boot/boot.asm in long mode with interrupts
/// off, on the boot stack. It hands the kernel's start-up (Kernel/Init) what to run once
/// every CPU is up: the suites and benchmarks the command line names, then the serial
/// shell if `shell` is given (`make shell`), or else the demo that `make run` shows.
/// This is the one place that puts the kernel, its in-kernel tests and the shell
/// together; Kernel/ never names a test.
@c(kmain)
func kmain(magic: UInt32, info: UInt64) {
  let hooks = KernelStart.Hooks(
    parameterKeys: { KernelTests.parameterKeys + [Shell.parameterKey] },
    beforeBringUp: { SendStopBringUp.prepare($0) },
    measuresBringUpFloor: { $0.has("bench") },
    afterBoot: { parameters, outcome in
      if parameters.has("shell") {
        let tests = KernelTests.run(parameters, bringUp: outcome)
        return tests == .passed ? Shell.run() : tests
      }
      if parameters.list("ktest").isEmpty && !parameters.has("bench") {
        return CrossCallDemo.run() && StopDemo.run() && SendStopDemo.run() ? .passed : .testsFailed
      }
      return KernelTests.run(parameters, bringUp: outcome)
    })
  KernelStart.start(magic: magic, info: info, hooks: hooks)
}
