import LockstepKernel
import Testing

@Suite("Statistics")
struct StatisticsTests {
  static let oneToHundred: [UInt64] = Array(1...100)

  @Test(arguments: [(0, 1), (1, 1), (25, 25), (50, 50), (90, 90), (99, 99), (100, 100)])
  func quantilesOfOneToHundred(percent: Int, expected: UInt64) {
    #expect(Statistics.quantile(Self.oneToHundred, percent) == expected)
  }

  @Test func nearestRankRoundsUp() {
    let ten: [UInt64] = Array(1...10)
    #expect(Statistics.quantile(ten, 50) == 5)
    #expect(Statistics.quantile(ten, 51) == 6)
    #expect(Statistics.quantile(ten, 99) == 10)
    let three: [UInt64] = [10, 20, 30]
    #expect(Statistics.quantile(three, 50) == 20)
    #expect(Statistics.quantile(three, 34) == 20)
    #expect(Statistics.quantile(three, 33) == 10)
  }

  @Test func singleElement() {
    #expect(Statistics.quantile([7], 0) == 7)
    #expect(Statistics.quantile([7], 100) == 7)
    #expect(
      Statistics.summary([7]) == Statistics.Summary(count: 1, min: 7, median: 7, p99: 7, max: 7))
  }

  @Test func empty() {
    #expect(Statistics.quantile([], 50) == 0)
    #expect(
      Statistics.summary([]) == Statistics.Summary(count: 0, min: 0, median: 0, p99: 0, max: 0))
  }

  @Test func summaryOfUnsortedSamples() {
    let samples: [UInt64] = Self.oneToHundred.reversed() + [1000]
    let summary = Statistics.summary(samples)
    #expect(summary == Statistics.Summary(count: 101, min: 1, median: 51, p99: 100, max: 1000))
  }

  @Test func summaryWithOutlier() {
    let samples: [UInt64] = [500, 100, 300, 200, 400, 99_999]
    #expect(
      Statistics.summary(samples)
        == Statistics.Summary(count: 6, min: 100, median: 300, p99: 99_999, max: 99_999))
  }
}
