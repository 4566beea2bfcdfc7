import Foundation
import LockstepKernel
import Testing

extension SMPTests {
  /// The console ring on threads, with its printer stalled until another CPU takes over.
  @Suite("Log ring takeover", .serialized)
  struct LogRingTakeoverTests {
    static let writers: [UInt16] = [1, 2, 3, 4]
    static let linesPerWriter = 200

    /// The text of writer `id`'s line `sequence`: a payload that shows any cut or mix.
    static func line(_ id: UInt16, _ sequence: Int) -> String {
      let letter = Character(UnicodeScalar(UInt8(97 + (Int(id) * 7 + sequence) % 26)))
      return "w\(id) \(sequence) " + String(repeating: letter, count: 8 + sequence % 24) + "."
    }

    static func write(_ id: UInt16, _ sequence: Int) {
      var logLine = LogLine()
      logLine.append(bytes: Array(line(id, sequence).utf8))
      LogRingBench.current.ring.write(logLine)
    }

    /// Writer 1 becomes the printer and stalls at its `stallAtWait`-th device wait (0:
    /// before its first line's first byte; 1: inside that line). The others then fill
    /// the 8-slot ring and one takes over; writer 1 resumes and all go on for 100 laps.
    func run(stallAtWait: Int) throws {
      let timing = LogRingTiming(
        takeoverAfter: 50_000_000, urgentTakeoverAfter: 5_000_000, skipAfter: 2_000_000_000,
        giveUpAfter: 10_000_000_000)
      let bench = LogRingBench(slots: 8, stallOwner: 1, stallAtWait: stallAtWait, timing: timing)
      LogRingBench.current = bench
      let victim = bench.spawn(as: 1) {
        for sequence in 0..<Self.linesPerWriter { Self.write(1, sequence) }
      }
      try #require(bench.stalled.wait(timeout: .now() + 5) == .success, "writer 1 never printed")
      let others = Self.writers.dropFirst().map { id in
        bench.spawn(as: id) { for sequence in 0..<Self.linesPerWriter { Self.write(id, sequence) } }
      }
      let deadline = HostClock.deadline(after: 10)
      while bench.takeovers.load(ordering: .relaxed) == 0 && HostClock.now() < deadline { usleep(1000) }
      bench.resume.signal()
      for done in [victim] + others {
        try #require(
          done.wait(timeout: .now() + 20) == .success, "a writer hung: \(bench.ring.cursorSnapshot)")
      }
      LogRingBench.setOwner(100)
      bench.ring.flush()
      check(bench, cutOffVictimLine: stallAtWait > 0)
    }

    /// Every line whole and printed once (a cut-off start or a duplicate only per
    /// takeover), in each writer's order; the ring empty and without a printer.
    func check(_ bench: LogRingBench, cutOffVictimLine: Bool) {
      let takeovers = bench.takeovers.load(ordering: .relaxed)
      #expect(takeovers >= 1)
      #expect(bench.skipped.load(ordering: .relaxed) == 0)
      #expect(bench.ring.unprintedCount == 0)
      #expect(bench.ring.cursorSnapshot.owner == 0)
      var seen: [UInt16: [Int]] = [:]
      var (cutOff, duplicates, blanks) = (0, 0, 0)
      let lines = bench.lines
      for (index, text) in lines.enumerated() {
        if text.hasPrefix("console: ") { continue }
        if text.isEmpty {
          blanks += 1
          continue
        }
        let fields = text.split(separator: " ")
        if fields.count == 3, let id = UInt16(fields[0].dropFirst()), let sequence = Int(fields[1]),
          text == Self.line(id, sequence)
        {
          if seen[id]?.contains(sequence) == true {
            duplicates += 1
          } else {
            seen[id, default: []].append(sequence)
          }
          continue
        }
        cutOff += 1
        let next = index + 1 < lines.count ? lines[index + 1] : ""
        #expect(next.hasPrefix("console: "), "a cut-off line not followed by a takeover notice: \(text)")
      }
      for id in Self.writers {
        #expect(seen[id] == Array(0..<Self.linesPerWriter), "writer \(id): lines lost or out of order")
      }
      #expect(
        cutOff + duplicates + blanks <= takeovers, "\(cutOff) cut, \(duplicates) twice, \(blanks) blank")
      if cutOffVictimLine { #expect(cutOff >= 1, "the stalled line's start should show") }
    }

    @Test func printerStalledBeforeALineIsTakenOverAndNeverPrintsAgain() throws {
      try run(stallAtWait: 0)
    }

    @Test func printerStalledInsideALineIsTakenOverAndStops() throws {
      try run(stallAtWait: 1)
    }
  }
}
