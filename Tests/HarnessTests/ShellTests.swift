import Foundation
import HarnessKit
import Testing

// The serial shell driver: answers checked on canned transcripts, the socket sink's QEMU
// argument, the shell configurations, and whole sessions against a fake QEMU (python3)
// serving the console socket.

@Suite("Serial shell")
struct ShellTests {
  private func converse(
    _ steps: [ShellStep], replies: [[String]], closesAtEnd: Bool = false,
    ended: Termination = .exited(33)
  ) -> [String] {
    let console = CannedConsole(banner: cannedBanner, replies: replies, closesAtEnd: closesAtEnd)
    var conversation = ShellConversation(channel: console)
    return conversation.run(ShellScript(steps: steps)) { ended }
  }

  @Test func promptIsFoundMidStreamAmongOtherCPUsLines() {
    let cpus = [
      "smp: CPU 3 idle\n", "CPU  APIC  state\n", "sched: a line from CPU 2\n  0     0  online\n",
      "  1     1  onl", "ine\nlock", "step> ", "sched: a late line from CPU 1\n",
    ]
    let failures = converse(
      [
        .answer("cpus", "CPU  APIC  state", "1  online"),
        .leaving("exit", .pass, expect: ["exit: leaving QEMU"]),
      ],
      replies: [cpus, ["exit: leaving QEMU\n"]], closesAtEnd: true)
    #expect(failures == [])
  }

  @Test func answerIsTheTextBeforeThePromptOnly() {
    // `online` follows the prompt: it belongs to no answer.
    let failures = converse(
      [.answer("cpus", "online")], replies: [["CPU  APIC  state\n", "lockstep> ", "  0  online\n"]])
    #expect(failures == ["step 1 'cpus': answer lacks 'online'"])
  }

  @Test func missingAndForbiddenSubstringsNameTheStep() {
    let failures = converse(
      [.answer("help", "cpus"), .answer("call 1", "call: CPU 1 ran the function")],
      replies: [
        ["cpus  the CPU table\n", "lockstep> "],
        ["error: CPU 1 is not online\n", "PANIC: CPU 2: exception 6\n", "lockstep> "],
      ])
    #expect(
      failures == [
        "step 2 'call 1': answer lacks 'call: CPU 1 ran the function'",
        "step 2 'call 1': answer contains 'error: '", "step 2 'call 1': answer contains 'PANIC'",
      ])
  }

  @Test func earlyExitNamesTheStepAndTheStepsNotRun() {
    let failures = converse(
      [.answer("cpus"), .answer("call 1"), .answer("stop"), .leaving("exit", .pass, expect: [])],
      replies: [["CPU  APIC  state\n", "lockstep> "], ["PANIC: CPU 1: exception 14\n"]],
      closesAtEnd: true, ended: .exited(37))
    #expect(
      failures == [
        "step 2 'call 1': QEMU exited before the prompt (kernel panic (status 37))",
        "2 later step(s) not run",
      ])
  }

  @Test func aResultTheKernelFoundWrongFailsTheStep() {
    let failures = converse(
      [.answer("call 1", "call: "), .answer("torture 2", "torture: ")],
      replies: [
        ["call: WRONG: the function for CPU 1 ran on CPU 2\n", "lockstep> "],
        ["torture: 10 calls issued, 9 run, 1 errors\n", "torture: FAILED (seed 7)\n", "lockstep> "],
      ])
    #expect(
      failures == [
        "step 1 'call 1': answer contains 'WRONG'", "step 2 'torture 2': answer contains 'FAILED'",
      ])
  }

  @Test func exitStepChecksTheStatus() {
    let panic = ShellStep.leaving("panic", .panic, expect: ["PANIC"])
    #expect(panic.forbidden == ShellStep.kernelVerdicts)  // PANIC is what it expects
    #expect(
      converse([panic], replies: [["PANIC: end of report\n"]], closesAtEnd: true, ended: .exited(37)) == [])
    #expect(
      converse([panic], replies: [["PANIC: end of report\n"]], closesAtEnd: true, ended: .exited(33))
        == ["step 1 'panic': QEMU ended with boot OK (status 33), expected a panic"])
  }

  @Test func expiredWaitsSayWhatTheyWaitedForHowLongAndTheLastBytes() {
    let silent = converse([ShellStep("bench", bound: .seconds(7))], replies: [["bench: started\r\n"]])
    #expect(
      silent == [
        #"step 1 'bench': waited 7 s for the prompt; last 200 bytes: "#
          + #""Lockstep booting\nBrought up 4 CPUs\nshell: Lockstep shell on CPU 0; type 'help'\n"#
          + #"lockstep> bench\nbench: started\r\n""#
      ])
    let noExit = converse([.leaving("exit", .pass, expect: [])], replies: [["lockstep> "]])
    #expect(noExit.count == 1 && noExit[0].hasPrefix("step 1 'exit': waited 30 s for QEMU to exit; "))
    var conversation = ShellConversation(
      channel: CannedConsole(banner: ["Brought up 4 CPUs\n"], replies: []))
    let boot = conversation.run(ShellScript(bootBound: .seconds(5), steps: [.answer("help")])) {
      .exited(33)
    }
    #expect(boot == [#"boot: waited 5 s for the first prompt; last 200 bytes: "Brought up 4 CPUs\n""#])
  }

  @Test func lineIsTypedWithACarriageReturnAndBackspaceKept() {
    let console = CannedConsole(banner: cannedBanner, replies: [["CPU  APIC  state\n", "lockstep> "]])
    var conversation = ShellConversation(channel: console)
    let script = ShellScript(steps: [.answer("cpuz\u{7f}s", "CPU  APIC  state")])
    #expect(conversation.run(script) { .stopped } == [])
    #expect(
      String(decoding: conversation.received, as: UTF8.self).hasSuffix(
        "cpuz\u{8} \u{8}s\nCPU  APIC  state\nlockstep> "))
  }

  @Test func stepNamesShowControlBytesAndCutLongLines() {
    #expect(ShellStep("cpuz\u{7f}s").name == #"cpuz\x7fs"#)
    let long = ShellStep(String(repeating: "x", count: 130))
    #expect(long.name == "xxxxxxxxxxxxxxxxxxxx... (130 characters)")
    #expect(ShellStep("").name == "(empty line)")
    #expect(ShellStep("help").forbidden == ["WRONG", "FAILED", "PANIC"])
    #expect(ShellStep.answer("help").forbidden == ["error: ", "WRONG", "FAILED", "PANIC"])
    #expect(ShellStep.leaving("panic", .panic, expect: []).forbidden == ["WRONG", "FAILED"])
    #expect(ShellStep.error("call", "error: call needs a CPU number").expected.first == "error: ")
  }

  @Test func socketSinkArgument() {
    let config = BootConfig(name: "s", smp: "2", append: "shell")
    let arguments = QEMUCommand(kernel: "k").arguments(
      for: config, serial: .socket(path: "/tmp/a,b.sock"))
    let chardev = arguments.firstIndex(of: "-chardev").map { arguments[$0 + 1] }
    #expect(chardev == "socket,id=console,path=/tmp/a,,b.sock,server=on,wait=on")
    #expect(arguments.contains("chardev:console") && !arguments.contains("-serial file:"))
    #expect(arguments.contains("shell"))
  }

  @Test func shellConfigsTypeEveryCommandAndEndByLeavingQEMU() {
    let shell = CheckRun.configurations(matching: "shell")
    #expect(
      shell.map(\.name) == ["shell-4", "shell-panic-2", "shell-exit-1", "shell-2-q35", "shell-polled-1", "shell-4-kvm"])
    for config in shell {
      #expect(config.append == "shell" && config.shell?.outcome == config.expectations.outcome)
      #expect(config.expectations.onlineCPUs == Array(0..<Int(config.smp)!))
    }
    let lines = shell[0].shell!.steps.map(\.line)
    for command in [
      "help", "cpus", "call 1", "offline 1", "online 1", "stop", "bench", "torture 2", "sendstop",
    ] {
      #expect(lines.contains(command), "shell-4 never types \(command)")
    }
    #expect(lines.filter { $0 == "offline 1" }.count == 2 && lines.contains(""))
    #expect(lines.contains { $0.count == 130 } && lines.last == "sendstop")
    #expect(shell[1].expectations.outcome == .panic && shell[1].shell!.steps.last!.line == "panic")
    #expect(shell[2].smp == "1" && shell[2].shell!.steps.last!.line == "exit")
    #expect(shell[3].machine == .q35 && shell[4].qemuArguments == ["-machine", "acpi=off"])
    #expect(shell[5].requiresKVM && !shell[0].requiresKVM)
    // Every byte by interrupt, except where there is none to route; a panic has no closing line.
    #expect(shell.map { $0.expectations.wholeLines?.body.contains("0 taken by 0") }
      == [false, nil, false, false, true, false])
  }

  @Test func shellFailuresAndAStoppedQEMUFailTheJudge() {
    var stopped = record("Brought up 1 CPUs\n", ended: .stopped)
    stopped.shellFailures = ["step 1 'help': answer lacks 'cpus'"]
    #expect(
      Judge.judge(stopped, against: Expectations()).failures == [
        "QEMU stopped by the harness before it exited", "shell: step 1 'help': answer lacks 'cpus'",
      ])
  }

  @Test func qemuErrorAfterTheSocketNoteIsTheReason() {
    let output = """
      qemu-system-x86_64: -chardev socket,id=console,path=l/s.sock,server=on,wait=on,logfile=l/s.log: \
      info: QEMU waiting for connection on: disconnected:unix:l/s.sock,server=on
      qemu: invalid kernel header

      """
    let verdict = Judge.judge(record("", status: 1, qemuOutput: output), against: Expectations())
    #expect(verdict.reason == "expected pass, got QEMU error (status 1): qemu: invalid kernel header")
  }

  @Test func stopperEndsABoundedRunEarly() throws {
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let stopper = ProcessStopper()
    // A thread of its own: Dispatch's pool may be busy with other tests' blocking waits.
    Thread {
      Thread.sleep(forTimeInterval: 0.2)
      stopper.stop()
    }.start()
    let start = ContinuousClock.now
    let termination = BoundedProcess.run(
      "sleep", arguments: ["30"], outputPath: directory + "/out", bound: .seconds(20),
      stopper: stopper)
    #expect(termination == .stopped)
    #expect(ContinuousClock.now - start < .seconds(5))
  }

  // Whole sessions against the fake QEMU (ShellFixtures.swift).

  private static let fakeAnswers = [
    "help": "cpus  call CPU  stop  offline CPU  online CPU  bench  exit\n",
    "cpus": "CPU  APIC  state\n  0     0  online\n  1     1  online\n",
    "call 1": "call: CPU 1 ran the function; round trip 12 us\n",
    "exit": "exit: leaving QEMU\n",
    "panic": "panic: a deliberate panic from the shell\nPANIC: CPU 0: shell\nPANIC: end of report\n",
  ]

  private func bootFake(
    _ steps: [ShellStep], exits: [String: Int], prompt: Bool = true, outcome: Outcome = .pass,
    bootBound: Duration = .seconds(10), logs: String = "logs"
  ) throws -> (record: BootRecord, verdict: Verdict, log: String) {
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let qemu = try fakeShellQEMU(
      in: directory, answers: ShellTests.fakeAnswers, exits: exits, prompt: prompt)
    let config = BootConfig(
      name: "fake-shell", smp: "2", append: "shell", timeout: .seconds(20),
      expectations: Expectations(outcome: outcome, onlineCPUs: [0, 1]),
      shell: ShellScript(bootBound: bootBound, steps: steps))
    let booter = Booter(
      command: QEMUCommand(qemu: qemu, kernel: "/dev/null"), logDirectory: "\(directory)/\(logs)")
    let record = booter.boot(config)
    let log = (try? String(contentsOfFile: booter.logPath(of: config), encoding: .utf8)) ?? ""
    return (record, Judge.judge(record, against: config.expectations), log)
  }

  @Test func sessionAgainstAFakeQEMUPasses() throws {
    // A log directory too deep for sun_path: the socket goes to a directory in /tmp.
    let deep = String(repeating: "d", count: 60) + "/" + String(repeating: "e", count: 60)
    let steps: [ShellStep] = [
      .answer("help", "call CPU"), .answer("cpuz\u{7f}s", "CPU  APIC  state", "1  online"),
      ShellStep("", reject: ["error: "]), .error("frob", "error: unknown command 'frob'; type help"),
      .answer("call 1", "call: CPU 1 ran the function; round trip ", " us"),
      .leaving("exit", .pass, expect: ["exit: leaving QEMU"]),
    ]
    let (record, verdict, log) = try bootFake(steps, exits: ["exit": 33], logs: deep)
    #expect(record.shellFailures == [])
    #expect(record.termination == .exited(33))
    #expect(verdict.passed, "\(verdict.reason)")
    // The log file holds the whole console, echo included.
    #expect(log.hasPrefix("Lockstep booting\n") && log.hasSuffix("lockstep> exit\nexit: leaving QEMU\n"))
    #expect(record.elapsed < .seconds(10))
  }

  @Test func sessionReportsAWrongAnswerAndEndsInThePanic() throws {
    let steps: [ShellStep] = [
      .answer("call 1", "call: CPU 1 ran the function"), .error("call 1", "error: CPU 1 is not online"),
      .leaving("panic", .panic, expect: ["panic: a deliberate panic from the shell", "PANIC"]),
    ]
    let (record, verdict, _) = try bootFake(steps, exits: ["panic": 37], outcome: .panic)
    #expect(record.termination == .exited(37))
    #expect(
      record.shellFailures == [
        "step 2 'call 1': answer lacks 'error: '",
        "step 2 'call 1': answer lacks 'error: CPU 1 is not online'",
      ])
    #expect(verdict.failures == record.shellFailures.map { "shell: \($0)" })
  }

  @Test func sessionReportsQEMUExitingEarly() throws {
    let steps: [ShellStep] = [.answer("call 1"), .answer("cpus"), .leaving("exit", .pass, expect: [])]
    let (record, verdict, _) = try bootFake(steps, exits: ["call 1": 37])
    #expect(
      record.shellFailures == [
        "step 1 'call 1': QEMU exited before the prompt (kernel panic (status 37))",
        "2 later step(s) not run",
      ])
    #expect(verdict.failures.first == "expected pass, got kernel panic (status 37)")
  }

  @Test func fakeThatNeverPromptsFailsWithinTheBound() throws {
    let start = ContinuousClock.now
    let (record, verdict, _) = try bootFake(
      [.answer("help")], exits: [:], prompt: false, bootBound: .seconds(1))
    #expect(ContinuousClock.now - start < .seconds(6))
    #expect(record.termination == .stopped)
    #expect(
      record.shellFailures == [
        #"boot: waited 1 s for the first prompt; last 200 bytes: "Lockstep booting\nBrought up 2 CPUs\n"#
          + #"smp: online cpus=0,1 apic=0,1\n""#
      ])
    #expect(verdict.failures.first == "QEMU stopped by the harness before it exited")
  }

  @Test func qemuThatNeverServesTheSocketFailsAtOnce() throws {
    let directory = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let qemu = try fakeQEMU(in: directory, "echo 'qemu-system-x86_64: -chardev socket: bad' >&2\nexit 1")
    let config = BootConfig(
      name: "no-socket", smp: "1", append: "shell", timeout: .seconds(20),
      shell: ShellScript(steps: [.answer("help")]))
    let start = ContinuousClock.now
    let record = Booter(command: QEMUCommand(qemu: qemu, kernel: "/dev/null"), logDirectory: directory)
      .boot(config)
    #expect(ContinuousClock.now - start < .seconds(5))
    #expect(record.shellFailures == ["QEMU ended before serving its console socket (QEMU error (status 1))"])
    #expect(
      Judge.judge(record, against: config.expectations).reason
        == "expected pass, got QEMU error (status 1): qemu-system-x86_64: -chardev socket: bad")
  }
}
