import Foundation
import HarnessKit

// Stand-ins for the kernel's serial shell: canned console text for the conversation logic,
// and a fake QEMU (python3) that serves the console socket for the whole session.

/// A console played from canned text: the banner first, then, after each typed carriage
/// return, a newline and the next reply's chunks, one chunk per receive. Typed bytes are
/// echoed as the shell echoes them. Once every reply is out the console closes, or stays
/// silent (each receive times out at once).
struct CannedConsole: ShellChannel {
  private var pending: [[UInt8]]
  private var replies: [[String]]
  private let closesAtEnd: Bool
  /// Everything typed so far.
  private(set) var typed: [UInt8] = []

  init(banner: [String], replies: [[String]], closesAtEnd: Bool = false) {
    self.pending = banner.map { Array($0.utf8) }
    self.replies = replies
    self.closesAtEnd = closesAtEnd
  }

  mutating func send(_ byte: UInt8) -> Bool {
    typed.append(byte)
    switch byte {
    case UInt8(ascii: "\r"):
      pending.append(Array("\n".utf8))
      if !replies.isEmpty { pending += replies.removeFirst().map { Array($0.utf8) } }
    case 0x7f:
      pending.append(Array("\u{8} \u{8}".utf8))
    default:
      pending.append([byte])
    }
    return true
  }

  mutating func receive(before deadline: ContinuousClock.Instant) -> ShellChannelRead {
    if !pending.isEmpty { return .data(pending.removeFirst()) }
    return replies.isEmpty && closesAtEnd ? .closed : .timedOut
  }
}

/// The banner of a canned boot: log lines, the shell's line, the first prompt.
let cannedBanner = [
  "Lockstep booting\n", "Brought up 4 CPUs\n", "shell: Lockstep shell on CPU 0; type 'help'\n",
  "lockstep> ",
]

/// Writes a fake QEMU, a python3 script, and the shell it plays (`shell.json` beside it).
/// It finds `-chardev socket,...,path=P,...`, serves P, and once the harness has
/// connected prints a boot banner and the prompt. Each typed line then gets
/// `answers[line]` (or the unknown-command error), a log line of CPU 1, and the prompt;
/// a line in `exits` ends it with that status instead. Without `prompt` it prints the
/// banner and then nothing for a minute.
/// - Returns: The script's path.
func fakeShellQEMU(
  in directory: String, answers: [String: String], exits: [String: Int], prompt: Bool = true
) throws -> String {
  let spec: [String: Any] = ["answers": answers, "exits": exits, "prompt": prompt]
  let json = try JSONSerialization.data(withJSONObject: spec)
  try json.write(to: URL(fileURLWithPath: directory + "/shell.json"))
  let path = directory + "/fake-qemu"
  try fakeShellScript.write(toFile: path, atomically: true, encoding: .utf8)
  try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
  return path
}

private let fakeShellScript = #"""
  #!/usr/bin/env python3
  import json, os, socket, sys, time
  here = os.path.dirname(os.path.abspath(__file__))
  spec = json.load(open(os.path.join(here, "shell.json")))
  args = sys.argv[1:]
  chardev = args[args.index("-chardev") + 1].replace(",,", "\0")
  options = dict(kv.split("=", 1) for kv in chardev.split(",")[1:] if "=" in kv)
  options = {key: value.replace("\0", ",") for key, value in options.items()}
  assert options["server"] == "on" and options["wait"] == "on", chardev
  server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
  time.sleep(0.2)  # the harness must retry until the socket exists
  server.bind(options["path"])
  server.listen(1)
  console, _ = server.accept()

  def out(text):
      data = text.encode()
      console.sendall(data)

  out("Lockstep booting\nBrought up 2 CPUs\nsmp: online cpus=0,1 apic=0,1\n")
  if not spec["prompt"]:
      time.sleep(60)
      sys.exit(1)
  out("shell: Lockstep shell on CPU 0; type 'help'\nlockstep> ")
  line = b""
  while True:
      byte = console.recv(1)
      if not byte:
          sys.exit(3)
      if byte in (b"\r", b"\n"):
          out("\n")
          command, line = line.decode(), b""
          if command:
              out(spec["answers"].get(command, "error: unknown command '%s'; type help\n" % command))
          if command in spec["exits"]:
              sys.exit(spec["exits"][command])
          out("sched: a line from CPU 1\nlockstep> ")
      elif byte in (b"\x7f", b"\x08"):
          if line:
              line = line[:-1]
              out("\b \b")
      else:
          line += byte
          out(byte.decode())
  """#
