// Fuzz target shell_line: the serial shell's input path, `ShellLineEditor` fed arbitrary
// bytes as a terminal (or anything on the serial line) might send them, and every line it
// submits parsed by `ShellCommand.parse` for a machine of 1 to 288 CPUs.
//
// Properties checked besides "no crash":
// - the line holds only printable ASCII, at most `capacity` characters, and exactly the
//   characters a second model of the editor, written here from its documentation, keeps;
// - every echo is printable, and every erase follows a character still on the line;
// - a parsed command's CPU is below the CPU count and its torture seconds within range;
//   a refused line's message is not empty.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzShellLine(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = UnsafeBufferPointer(start: data, count: size)
  // The first byte picks the machine's size, the rest is typed.
  let cpuCount = size > 0 ? Int(bytes[0]) % 288 + 1 : 1
  var editor = ShellLineEditor()
  var model = EditorModel()
  for byte in bytes.dropFirst() {
    let action = editor.feed(byte)
    let expected = model.feed(byte)
    require(action == expected, "byte \(byte): editor \(action), model \(expected)")
    switch action {
    case .echo(let character):
      require((0x20...0x7E).contains(character), "echoed \(character)")
    case .submit:
      let text = editor.withText { Array($0) }
      require(text == Array(model.line.prefix(ShellLineEditor.capacity)), "line differs from the model")
      require(editor.isTooLong == (model.line.count > ShellLineEditor.capacity), "too-long flag")
      require(text.allSatisfy { (0x20...0x7E).contains($0) }, "unprintable byte kept")
      if !editor.isTooLong { checkParse(text, cpuCount: cpuCount) }
    case .none, .erase, .cancel:
      break
    }
  }
  return 0
}

/// The parse of a submitted line keeps its promises.
func checkParse(_ text: [UInt8], cpuCount: Int) {
  text.withUnsafeBufferPointer { line in
    do throws(ShellCommandError) {
      switch try ShellCommand.parse(line, cpuCount: cpuCount) {
      case .call(let cpu), .offline(let cpu), .online(let cpu):
        require(cpu.rawValue >= 0 && cpu.rawValue < cpuCount, "CPU \(cpu.rawValue) of \(cpuCount)")
      case .torture(let seconds):
        require(ShellCommand.tortureSeconds.contains(seconds), "torture \(seconds) s")
      case .empty:
        require(line.allSatisfy { $0 == 0x20 || $0 == 0x09 }, "a line with words parsed as empty")
      default:
        break
      }
    } catch {
      require(error.message.count > 0, "an empty error message")
    }
  }
}

/// The editor as its documentation describes it, kept simple: the whole line as typed
/// (no capacity), CR LF as one end, escape sequences swallowed.
struct EditorModel {
  var line: [UInt8] = []
  private var ended = false
  private var afterCR = false
  private var escape = 0  // 0 none, 1 after ESC, 2 inside a sequence

  mutating func feed(_ byte: UInt8) -> ShellLineEditor.Action {
    let followsCR = afterCR
    afterCR = false
    if followsCR && byte == 0x0A { return .none }
    if ended {
      ended = false
      line = []
    }
    if escape == 1 {
      escape = byte == UInt8(ascii: "[") || byte == UInt8(ascii: "O") ? 2 : 0
      return .none
    }
    if escape == 2 {
      if byte >= 0x40 && byte <= 0x7E { escape = 0 }
      return .none
    }
    switch byte {
    case 0x0D:
      afterCR = true
      ended = true
      return .submit
    case 0x0A:
      ended = true
      return .submit
    case 0x7F, 0x08:
      guard !line.isEmpty else { return .none }
      line.removeLast()
      return .erase
    case 0x03:
      ended = true
      return .cancel
    case 0x1B:
      escape = 1
      return .none
    case 0x20...0x7E:
      line.append(byte)
      return .echo(byte)
    default:
      return .none
    }
  }
}
