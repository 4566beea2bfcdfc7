import Foundation
import LockstepKernel

// A stop trace as a picture: one lane per CPU, one bar per state the CPU was in, on a
// shared time axis from the moment stop_machine was called. `make trace` writes it beside
// the trace-event file; docs/how-it-works.md shows one.

/// Draws a `StopTraceBlock` as an SVG timeline.
public enum StopTraceSVG {
  /// Fill colour of each state's bars, in `StopTraceJSON.states` order.
  static let colours = ["#9ecae1", "#fdae6b", "#d62728", "#74c476"]
  static let laneHeight = 26.0
  static let left = 70.0
  static let plotWidth = 720.0
  static let top = 40.0

  /// The SVG document for `block`: a lane per CPU (its number, and "active" where the
  /// function ran there), its states as bars, a time axis in microseconds with about
  /// six ticks, and a legend.
  public static func svg(_ block: StopTraceBlock) -> String {
    let lanes = block.cpus.sorted { $0.cpu < $1.cpu }
    let times = lanes.map { line in
      [line.prepare, line.disableIRQ, line.run, line.exit, line.left].map {
        StopTraceJSON.nanoseconds(from: line.called, to: $0, khz: block.tscKHz) / 1000
      }
    }
    let end = max(times.flatMap { $0 }.max() ?? 1, 1)
    let step = tickStep(for: end)
    let scale = plotWidth / (ceil(end / step) * step)
    let height = top + Double(lanes.count) * laneHeight + 70
    var out = """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(left + plotWidth + 30))" height="\(Int(height))" \
      font-family="sans-serif" font-size="12">
      <rect width="100%" height="100%" fill="white"/>
      <text x="\(left)" y="20" font-size="14">stop_machine #\(block.generation) on \(lanes.count) CPUs: \
      each CPU's states from the call (µs)</text>

      """
    for (row, line) in lanes.enumerated() {
      let y = top + Double(row) * laneHeight
      let label = "CPU \(line.cpu)\(line.isActive ? " *" : "")"
      out += "<text x=\"8\" y=\"\(format(y + 17))\">\(label)</text>\n"
      for state in 0..<4 {
        let x = left + times[row][state] * scale
        let width = max((times[row][state + 1] - times[row][state]) * scale, 0.5)
        out +=
          "<rect x=\"\(format(x))\" y=\"\(format(y + 4))\" width=\"\(format(width))\" height=\"18\" "
          + "fill=\"\(colours[state])\"><title>CPU \(line.cpu) \(StopTraceJSON.stateNames[state]) "
          + "\(format(times[row][state])) to \(format(times[row][state + 1])) µs</title></rect>\n"
      }
    }
    let axis = top + Double(lanes.count) * laneHeight + 6
    out += "<line x1=\"\(left)\" y1=\"\(format(axis))\" x2=\"\(left + plotWidth)\" y2=\"\(format(axis))\" stroke=\"black\"/>\n"
    var tick = 0.0
    while tick * scale <= plotWidth + 0.01 {
      let x = format(left + tick * scale)
      out += "<line x1=\"\(x)\" y1=\"\(format(axis))\" x2=\"\(x)\" y2=\"\(format(axis + 5))\" stroke=\"black\"/>\n"
      out += "<text x=\"\(x)\" y=\"\(format(axis + 18))\" text-anchor=\"middle\">\(format(tick))</text>\n"
      tick += step
    }
    for (index, name) in StopTraceJSON.stateNames.enumerated() {
      let x = left + Double(index) * 150
      out += "<rect x=\"\(format(x))\" y=\"\(format(axis + 32))\" width=\"14\" height=\"14\" fill=\"\(colours[index])\"/>\n"
      out += "<text x=\"\(format(x + 20))\" y=\"\(format(axis + 44))\">\(name)</text>\n"
    }
    out += "<text x=\"\(format(left + 600))\" y=\"\(format(axis + 44))\">* the function ran here</text>\n"
    return out + "</svg>\n"
  }

  /// A round tick step (1, 2 or 5 times a power of ten) giving at most about six ticks.
  public static func tickStep(for end: Double) -> Double {
    let raw = end / 6
    let power = pow(10, floor(log10(raw)))
    for factor in [1.0, 2, 5, 10] where factor * power >= raw { return factor * power }
    return 10 * power
  }

  /// At most one decimal, no trailing ".0".
  static func format(_ value: Double) -> String {
    let rounded = (value * 10).rounded() / 10
    return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
  }
}
