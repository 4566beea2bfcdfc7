/// What `make run` shows of the stop machinery. (Being written.)
enum StopDemo {
  /// Returns whether everything it showed was right.
  static func run() -> Bool { true }
}
