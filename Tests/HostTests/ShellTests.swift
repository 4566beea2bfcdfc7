import LockstepKernel
import Testing

@Suite("Shell line editor and commands")
struct ShellInputTests {
  /// Feeds `bytes` and returns the actions, and the text of the last line submitted.
  static func type(_ bytes: [UInt8], into editor: inout ShellLineEditor) -> [ShellLineEditor.Action] {
    bytes.map { editor.feed($0) }
  }

  static func text(_ editor: ShellLineEditor) -> String {
    editor.withText { String(decoding: $0, as: UTF8.self) }
  }

  enum Parsed: Equatable {
    case command(ShellCommand)
    case error(String)
  }

  static func parse(_ line: String, cpus: Int = 4) -> Parsed {
    Array(line.utf8).withUnsafeBufferPointer { buffer in
      do throws(ShellCommandError) {
        return .command(try ShellCommand.parse(buffer, cpuCount: cpus))
      } catch {
        return .error(error.message.withBytes { String(decoding: $0, as: UTF8.self) })
      }
    }
  }

  @Test func printableCharactersAreKeptAndEchoed() {
    var editor = ShellLineEditor()
    let actions = Self.type(Array("cpus\r".utf8), into: &editor)
    #expect(actions == [.echo(99), .echo(112), .echo(117), .echo(115), .submit])
    #expect(Self.text(editor) == "cpus")
  }

  @Test func backspaceAndDeleteTakeBackOneCharacterAndNotPastTheStart() {
    var editor = ShellLineEditor()
    let actions = Self.type([0x7F] + Array("cpuz".utf8) + [0x7F] + Array("s".utf8) + [0x08, 0x08] + Array("us\n".utf8), into: &editor)
    #expect(actions.first == ShellLineEditor.Action.none)
    #expect(actions.filter { $0 == .erase }.count == 3)
    #expect(Self.text(editor) == "cpus")
  }

  @Test func crLFEndsOneLineAndTheNextLineStartsEmpty() {
    var editor = ShellLineEditor()
    #expect(Self.type(Array("help\r\n".utf8), into: &editor).suffix(2) == [.submit, .none])
    #expect(Self.text(editor) == "help")
    #expect(Self.type(Array("\n".utf8), into: &editor) == [.submit])
    #expect(Self.text(editor) == "")
    #expect(Self.type(Array("x\r\r".utf8), into: &editor) == [.echo(120), .submit, .submit])
    #expect(Self.text(editor) == "")
  }

  @Test func escapeSequencesAndControlBytesLeaveNoText() {
    var editor = ShellLineEditor()
    // Up arrow, Right arrow (SS3 form), a function key (ESC [ 1 5 ~), a tab, UTF-8 "é", NUL.
    let noise: [UInt8] = [0x1B, 0x5B, 0x41, 0x1B, 0x4F, 0x43, 0x1B, 0x5B, 0x31, 0x35, 0x7E, 0x09, 0xC3, 0xA9, 0x00]
    let actions = Self.type(noise + Array("cpus\r".utf8), into: &editor)
    #expect(actions.prefix(noise.count).allSatisfy { $0 == .none })
    #expect(Self.text(editor) == "cpus")
  }

  @Test func ctrlCDropsTheLine() {
    var editor = ShellLineEditor()
    #expect(Self.type(Array("offline 1".utf8) + [0x03], into: &editor).last == .cancel)
    #expect(Self.type(Array("cpus\r".utf8), into: &editor).last == .submit)
    #expect(Self.text(editor) == "cpus")
  }

  @Test func aLineLongerThanTheCapacityIsEchoedWholeAndReportedTooLong() {
    var editor = ShellLineEditor()
    let long = Array(repeating: UInt8(ascii: "a"), count: ShellLineEditor.capacity + 10)
    let actions = Self.type(long + [0x0D], into: &editor)
    #expect(actions.filter { $0 == .echo(97) }.count == long.count)
    #expect(editor.isTooLong)
    #expect(Self.text(editor).count == ShellLineEditor.capacity)
    // Taking back the extra characters makes it fit again.
    var fits = ShellLineEditor()
    _ = Self.type(long + Array(repeating: 0x7F, count: 10) + [0x0D], into: &fits)
    #expect(!fits.isTooLong)
    #expect(Self.text(fits).count == ShellLineEditor.capacity)
  }

  @Test func commandsWithoutArguments() {
    #expect(Self.parse("") == .command(.empty))
    #expect(Self.parse("  \t ") == .command(.empty))
    #expect(Self.parse("help") == .command(.help))
    #expect(Self.parse("  cpus  ") == .command(.cpus))
    #expect(Self.parse("stop") == .command(.stop))
    #expect(Self.parse("bench") == .command(.bench))
    #expect(Self.parse("sendstop") == .command(.sendstop))
    #expect(Self.parse("panic") == .command(.panic))
    #expect(Self.parse("exit") == .command(.exit))
    #expect(Self.parse("cpus 1") == .error("cpus takes no argument"))
    #expect(Self.parse("CPUS") == .error("unknown command 'CPUS'; type help"))
    #expect(Self.parse("frob 1 2") == .error("unknown command 'frob'; type help"))
  }

  @Test func cpuArguments() {
    #expect(Self.parse("call 1") == .command(.call(CPUIndex(1))))
    #expect(Self.parse("call\t0") == .command(.call(CPUIndex(0))))
    #expect(Self.parse("call 003") == .command(.call(CPUIndex(3))))
    #expect(Self.parse("offline 2") == .command(.offline(CPUIndex(2))))
    #expect(Self.parse("online 3") == .command(.online(CPUIndex(3))))
    #expect(Self.parse("call") == .error("call needs a CPU number: call CPU"))
    #expect(Self.parse("online") == .error("online needs a CPU number: online CPU"))
    #expect(Self.parse("call 1 2") == .error("call takes one argument"))
    #expect(Self.parse("call 4") == .error("CPU 4 does not exist (CPUs are 0-3)"))
    #expect(Self.parse("call 9", cpus: 1) == .error("CPU 9 does not exist (CPUs are 0-0)"))
    #expect(Self.parse("call x") == .error("'x' is not a CPU number"))
    #expect(Self.parse("call -1") == .error("'-1' is not a CPU number"))
    #expect(Self.parse("call 0x1") == .error("'0x1' is not a CPU number"))
    #expect(Self.parse("call 99999999999999999999999") == .error("CPU 99999999999999999999999 does not exist (CPUs are 0-3)"))
    #expect(Self.parse("call 999999999", cpus: 288) == .error("CPU 999999999 does not exist (CPUs are 0-287)"))
  }

  @Test func tortureSeconds() {
    #expect(Self.parse("torture 1") == .command(.torture(seconds: 1)))
    #expect(Self.parse("torture 600") == .command(.torture(seconds: 600)))
    #expect(Self.parse("torture 0") == .error("torture takes 1 to 600 seconds"))
    #expect(Self.parse("torture 601") == .error("torture takes 1 to 600 seconds"))
    #expect(Self.parse("torture 100000") == .error("torture takes 1 to 600 seconds"))
    #expect(Self.parse("torture 1000000000000") == .error("torture takes 1 to 600 seconds"))
    #expect(Self.parse("torture abc") == .error("'abc' is not a number of seconds"))
    #expect(Self.parse("torture") == .error("torture needs a number of seconds: torture SECONDS"))
  }

  @Test func helpNamesEveryCommand() {
    let names = ShellCommand.usage.map { $0.command.description }
    #expect(names == [
      "help", "cpus", "call CPU", "stop", "offline CPU", "online CPU", "bench", "torture SECONDS", "sendstop",
      "panic", "exit",
    ])
    for entry in ShellCommand.usage {
      let word = String(entry.command.description.split(separator: " ")[0])
      if case .error(let message) = Self.parse(word), message.hasPrefix("unknown") {
        Issue.record("help names '\(word)', which the parser does not know")
      }
    }
  }
}
