// What every fuzz target shares: how a broken property is reported.

/// Stops the run when a property does not hold. `fatalError` traps, libFuzzer reports the
/// trap as a crash and saves the input that caused it.
///
/// - Parameters:
///   - condition: the property.
///   - message: what broke, for the crash report.
func require(
  _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
  file: StaticString = #fileID, line: UInt = #line
) {
  if !condition() {
    fatalError("fuzz property broken: \(message())", file: file, line: line)
  }
}
