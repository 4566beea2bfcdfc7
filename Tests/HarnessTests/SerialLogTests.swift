import HarnessKit
import Testing

// Reading the kernel's bring-up, dead-AP and panic lines out of a serial log.

@Suite("Serial log")
struct SerialLogTests {
  @Test func splitsCRLFAndLFLines() {
    let log = SerialLog("a\r\nb\nc\r\n\nd")
    #expect(log.lines == ["a", "b", "c", "", "d"])
    #expect(SerialLog("").lines.isEmpty)
  }

  @Test func readsBringUpAndOnlineLines() {
    let log = SerialLog(CannedLog.boot4)
    #expect(log.broughtUp == 4)
    #expect(log.online == OnlineCPUs(cpus: [0, 1, 2, 3], apicIDs: [0, 1, 2, 3]))
    #expect(log.deadAPs.isEmpty && log.panicLines.isEmpty)
  }

  @Test func onlineLineWithSparseAPICIDs() {
    let online = OnlineCPUs.parse("smp: online cpus=0,1,2,3,4,5 apic=0,1,2,4,5,6")
    #expect(online?.cpus == [0, 1, 2, 3, 4, 5])
    #expect(online?.apicIDs == [0, 1, 2, 4, 5, 6])
    #expect(OnlineCPUs.parse("smp: online cpus=0 apic=4294967295")?.apicIDs == [UInt32.max])
  }

  @Test func onlineLineInCPUListForm() {
    let online = OnlineCPUs.parse("smp: online cpus=0-5 apic=0-2,4-6")
    #expect(online?.cpus == [0, 1, 2, 3, 4, 5])
    #expect(online?.apicIDs == [0, 1, 2, 4, 5, 6])
    #expect(OnlineCPUs.parse("smp: online cpus=3-1 apic=0")?.cpus == nil)
    #expect(OnlineCPUs.parse("smp: online cpus=0- apic=0")?.cpus == nil)
  }

  /// Found by the ktap fuzz target: expanding this range tried to allocate 32 GB, and
  /// smaller ones of millions slowed every log that held one.
  @Test func hugeCPUListRangeIsMalformed() {
    let line = "smp: online cpus=0-4000000000 apic=0"
    #expect(OnlineCPUs.parse(Substring(line)) == nil)
    #expect(SerialLog(line + "\n").online == nil)
    var most = TextCursor("0-\(TextCursor.maximumListCount - 1)")
    #expect(most.integerList()?.count == TextCursor.maximumListCount)
    var tooMany = TextCursor("0-\(TextCursor.maximumListCount - 2),9,10")
    #expect(tooMany.integerList() == nil && tooMany.rest.hasPrefix("0-"))
  }

  @Test(arguments: [
    "smp: online cpus= apic=0", "smp: online cpus=0,,1 apic=0,1", "smp: online cpus=0",
    "smp: online cpus=0 apic=4294967296", "smp: online cpus=-1 apic=0", "online cpus=0 apic=0",
  ])
  func rejectsMalformedOnlineLines(line: String) {
    #expect(OnlineCPUs.parse(Substring(line)) == nil)
  }

  @Test func readsDeadAPLines() {
    let log = SerialLog(CannedLog.deadAP)
    #expect(log.deadAPs == [DeadAPReport(cpu: 2, apic: 2, attempts: 2, milliseconds: 412)])
    let single = DeadAPReport.parse(
      "smp: CPU 7 (APIC 14) did not come online after 1 attempt (90 ms since first INIT)")
    #expect(single == DeadAPReport(cpu: 7, apic: 14, attempts: 1, milliseconds: 90))
    #expect(DeadAPReport.parse("smp: CPU 2 (APIC 2) did not come online") == nil)
  }

  @Test func broughtUpMustStartTheLine() {
    #expect(SerialLog("Brought up 1 CPU\n").broughtUp == 1)
    #expect(SerialLog("x Brought up 4 CPUs\n").broughtUp == nil)
    #expect(SerialLog("Brought up many CPUs\n").broughtUp == nil)
  }

  @Test func collectsThePanicReport() {
    let log = SerialLog(CannedLog.panicUD)
    #expect(log.panicLines.count == 4)
    #expect(log.panicLines.first == "PANIC: CPU 0: exception 6 (#UD invalid opcode) error 0x0")
    #expect(log.hasCompletePanicReport)
    #expect(!SerialLog("PANIC: CPU 1: exception 14\n").hasCompletePanicReport)
  }

  @Test func tailKeepsTheLastLines() {
    let log = SerialLog((1...30).map { "line \($0)" }.joined(separator: "\n"))
    #expect(log.tail(20).first == "line 11" && log.tail(20).count == 20)
    #expect(SerialLog("one\n").tail(20) == ["one"])
  }

  @Test func cursorReadsTheGrammar() {
    var cursor = TextCursor("x=-12,3 rest")
    #expect(cursor.skip("x=") && cursor.integer() == -12)
    #expect(!cursor.skip("y") && cursor.skip(","))
    #expect(cursor.integerList() == [3])
    #expect(cursor.upTo("st") == " re" && cursor.rest == "st")
  }
}
