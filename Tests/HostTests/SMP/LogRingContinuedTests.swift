import LockstepKernel
import Testing

extension SMPTests {
  /// Records that do not end their line: the shell's prompt and the characters it echoes.
  @Suite("Log ring continued lines", .serialized)
  struct LogRingContinuedTests {
    static func line(_ text: String, endsLine: Bool = true) -> LogLine {
      var line = LogLine()
      line.append(bytes: Array(text.utf8))
      line.endsLine = endsLine
      return line
    }

    @Test func aPromptAndItsEchoShareOneLine() {
      let timing = LogRingTiming(
        takeoverAfter: 1_000_000_000, urgentTakeoverAfter: 20_000_000, skipAfter: 100_000_000,
        giveUpAfter: 3_000_000_000)
      let bench = LogRingBench(slots: 8, timing: timing)
      LogRingBench.current = bench
      LogRingBench.setOwner(1)
      let ring = bench.ring
      ring.write(Self.line("shell: ready"))
      ring.write(Self.line("lockstep> ", endsLine: false))
      for character in "cpus" { ring.write(Self.line(String(character), endsLine: false)) }
      ring.write(Self.line(""))  // the Enter: an empty record that ends the line
      ring.write(Self.line("", endsLine: false))  // nothing at all: prints nothing
      ring.write(Self.line("CPU  APIC  state"))
      ring.flush()
      let text = String(decoding: bench.output.withLock { $0 }, as: UTF8.self)
      #expect(text == "shell: ready\nlockstep> cpus\nCPU  APIC  state\n")
      #expect(ring.unprintedCount == 0)
      #expect(ring.cursorSnapshot.owner == 0)
    }
  }
}
