import Synchronization

/// `shell` on the command line: an interactive prompt on the serial console, where a
/// person (or the harness, through QEMU's serial input) drives the SMP machinery by hand:
/// the CPU table, a cross-call, a stop_machine, CPU hotplug, a short benchmark, the
/// torture, `smp_send_stop` and a panic. `make shell` boots into it.
///
/// The shell is a loop on the boot CPU, in the boot thread: it reads a byte
/// (`SerialInput`, by the UART's receive interrupt, sleeping in between), edits the line
/// (`ShellLineEditor`), and on Enter parses it (`ShellCommand`, which checks every
/// argument before anything runs) and runs it (`ShellCommands`). Echo and prompt go
/// through the kernel log like every other line, as records that do not end their line
/// (`LogLine.endsLine`), so they never cut into another CPU's line.
///
/// Nothing typed can hang or crash the kernel: bad input gets an `error:` line, and every
/// command's waits are the kernel's own bounded ones. Only `panic` and `sendstop` end
/// the machine, and `exit` leaves QEMU; each says so first.
enum Shell {
  /// The key that starts the shell after boot (and after any `ktest=` suites).
  static let parameterKey = BootParameterKey("shell", .flag)
  static let prompt: StaticString = "lockstep> "
  /// How long one read waits before the loop looks again: a person may type nothing
  /// for hours, so the shell's wait is a loop of bounded ones.
  static let readNanoseconds: UInt64 = 60_000_000_000

  /// Runs the shell until `exit`, `sendstop` or `panic`; returns QEMU's exit status.
  /// Boot CPU, thread context, interrupts on.
  static func run() -> DebugExit.Status {
    let mode = SerialInput.open()
    log("shell: Lockstep shell on CPU \(X86_64Platform.currentCPU); type 'help'")
    switch mode {
    case .interrupt(let gsi):
      log(
        "shell: input by interrupt: COM1 (ISA IRQ \(Int(SerialInput.isaIRQ))) -> I/O APIC GSI \(UInt64(gsi)) -> vector \(hex: UInt64(Vector.serialInput.rawValue)) on CPU \(SerialInput.owner)"
      )
    case .polled(let reason):
      log("shell: input polled every \(SerialInput.pollNanoseconds / 1_000_000) ms: \(line: reason)")
    }
    var editor = ShellLineEditor()
    showPrompt()
    while true {
      guard let byte = SerialInput.read(atMost: readNanoseconds) else { continue }
      switch editor.feed(byte) {
      case .none:
        break
      case .echo(let character):
        var echo = LogLine()
        echo.append(byte: character)
        show(echo)
      case .erase:
        show("\u{8} \u{8}")
      case .cancel:
        log("^C")
        showPrompt()
      case .submit:
        log("")  // ends the echoed line
        if let status = submit(editor) {
          leave(status)
          return status
        }
        showPrompt()
      }
    }
  }

  /// Runs a complete line; returns the exit status when the command ends the shell.
  private static func submit(_ editor: ShellLineEditor) -> DebugExit.Status? {
    guard !editor.isTooLong else {
      log("error: line too long (at most \(ShellLineEditor.capacity) characters)")
      return nil
    }
    let parsed = editor.withText { text in
      Result { () throws(ShellCommandError) in try ShellCommand.parse(text, cpuCount: CPUs.possibleCount) }
    }
    switch parsed {
    case .success(let command):
      return ShellCommands.run(command)
    case .failure(let error):
      log("error: \(line: error.message)")
      return nil
    }
  }

  /// What the input saw, as the shell ends.
  private static func leave(_ status: DebugExit.Status) {
    let byInterrupt = SerialInput.bytesByInterrupt.load(ordering: .relaxed)
    let byPolling = SerialInput.bytesByPolling.load(ordering: .relaxed)
    log(
      "shell: input: \(byInterrupt + byPolling) bytes, \(byInterrupt) taken by \(SerialInput.interrupts.load(ordering: .relaxed)) receive interrupts, \(byPolling) found by polling, \(SerialInput.dropped.load(ordering: .relaxed)) dropped"
    )
  }

  private static func showPrompt() {
    var line = LogLine(stringLiteral: prompt)
    line.endsLine = false
    Console.write(line)
  }

  /// Writes `text` without ending the line.
  private static func show(_ text: LogLine) {
    var line = text
    line.endsLine = false
    Console.write(line)
  }
}
