/// Linux's "cpulist" text form of a set of numbers: ascending ranges joined by commas,
/// as in `0-3,5,8-11` (Documentation/admin-guide/cputopology.rst). Used for CPU sets and
/// APIC ID lists in the log, where a 64-CPU machine must still fit on one line.
extension LogLine {
  /// Appends `values` (ascending, no duplicates) in cpulist form; nothing when empty.
  public mutating func append<S: Sequence>(cpuList values: S) where S.Element == Int {
    var rangeStart = -1
    var rangeEnd = -1
    var first = true
    for value in values {
      if rangeStart >= 0 && value == rangeEnd + 1 {
        rangeEnd = value
        continue
      }
      if rangeStart >= 0 { appendRange(rangeStart, rangeEnd, first: &first) }
      rangeStart = value
      rangeEnd = value
    }
    if rangeStart >= 0 { appendRange(rangeStart, rangeEnd, first: &first) }
  }

  private mutating func appendRange(_ start: Int, _ end: Int, first: inout Bool) {
    if !first { append(",") }
    first = false
    append(decimal: start)
    if end > start {
      append("-")
      append(decimal: end)
    }
  }
}
