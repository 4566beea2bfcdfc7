import LockstepKernel
import Testing

/// Encodings checked against Intel SDM Vol. 3A Figure 11-12 by hand: vector bits 0-7,
/// delivery mode 8-10, level 14, trigger 15, shorthand 18-19.
@Suite("InterruptCommand")
struct InterruptCommandTests {
  @Test func initAssert() {
    let command = InterruptCommand.initAssert(to: APICID(3))
    #expect(command.xAPICLow == 0x0000_C500)
    #expect(command.xAPICHigh == 0x0300_0000)
    #expect(command.x2APIC == 0x0000_0003_0000_C500)
  }

  @Test func initDeassert() {
    let command = InterruptCommand.initDeassert(to: APICID(3))
    #expect(command.xAPICLow == 0x0000_8500)
    #expect(!command.isLevelAssert)
    #expect(command.isLevelTriggered)
  }

  @Test func startupPage8() {
    let command = InterruptCommand.startup(page: 0x08, to: APICID(1))
    #expect(command.xAPICLow == 0x0000_4608)
    #expect(command.xAPICHigh == 0x0100_0000)
    #expect(command.deliveryMode == .startup)
    #expect(command.vector == 0x08)
  }

  @Test func fixedIPI() {
    let command = InterruptCommand.fixed(Vector(0xF0), to: APICID(0xFE))
    #expect(command.xAPICLow == 0x0000_40F0)
    #expect(command.xAPICHigh == 0xFE00_0000)
  }

  @Test func nmi() {
    let command = InterruptCommand.nmi(to: APICID(2))
    #expect(command.xAPICLow == 0x0000_4400)
    #expect(command.xAPICHigh == 0x0200_0000)
  }

  @Test func x2APICDestination300() {
    #expect(InterruptCommand.fixed(Vector(0xF0), to: APICID(300)).x2APIC == 0x0000_012C_0000_40F0)
    #expect(InterruptCommand.nmi(to: APICID(0x10000)).x2APIC == 0x0001_0000_0000_4400)
    #expect(InterruptCommand.startup(page: 8, to: APICID(300)).x2APIC == 0x0000_012C_0000_4608)
  }

  @Test func shorthands() {
    var command = InterruptCommand.fixed(Vector(0xF1), to: APICID(300))
    command.shorthand = .allExcludingSelf
    #expect(command.xAPICLow == 0x000C_40F1)
    #expect(command.xAPICHigh == 0, "destination is ignored with a shorthand")
    #expect(command.x2APIC == 0x000C_40F1)
    command.shorthand = .selfOnly
    #expect(command.xAPICLow == 0x0004_40F1)
    command.shorthand = .allIncludingSelf
    #expect(command.xAPICLow == 0x0008_40F1)
  }

  @Test func broadcastDestination() {
    #expect(InterruptCommand.nmi(to: .xAPICBroadcast).xAPICHigh == 0xFF00_0000)
  }

  @Test func deliveryStatusIsNeverSet() {
    #expect(InterruptCommand.deliveryStatusBit == 0x1000)
    let commands: [InterruptCommand] = [
      .initAssert(to: APICID(1)), .initDeassert(to: APICID(1)), .startup(page: 0xFF, to: APICID(1)),
      .fixed(Vector(0xFF), to: APICID(1)), .nmi(to: APICID(1)),
    ]
    for command in commands {
      #expect(command.xAPICLow & InterruptCommand.deliveryStatusBit == 0)
      #expect(command.xAPICLow & 1 << 11 == 0, "physical destination mode")
    }
  }

  @Test func deliveryModeValues() {
    let modes: [InterruptCommand.DeliveryMode] = [
      .fixed, .lowestPriority, .smi, .nmi, .initialize, .startup,
    ]
    #expect(modes.map(\.rawValue) == [0, 1, 2, 4, 5, 6])
  }
}
