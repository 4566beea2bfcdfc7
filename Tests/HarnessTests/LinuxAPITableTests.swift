import Foundation
import Testing

// docs/linux-api.md against the `/// Linux:` lines of Kernel/: every Linux name such a line
// gives has a row naming the same file, and every row names a file whose `/// Linux:` lines
// give its Linux name. The rule for what counts as a name is written at the top of the doc.

/// One Linux name as a `/// Linux:` line gives it, or as a row of the doc gives it.
struct LinuxAPIEntry: Hashable, CustomStringConvertible {
  /// `smp_call_function_single()`, `struct completion`, `NR_CPUS`.
  let name: String
  /// The file, relative to the package root: `Kernel/SMP/CrossCallAPI.swift`.
  let file: String

  var description: String { "`\(name)` in \(file)" }
}

enum LinuxAPITable {
  /// The package root, found from this file's place (Tests/HarnessTests/).
  static let root =
    String(#filePath).split(separator: "/", omittingEmptySubsequences: false).dropLast(3)
    .joined(separator: "/")

  /// The Linux names one `/// Linux:` line gives (its text after `Linux:`): `name(...)` as
  /// `name()`, `struct name`, and a lone identifier in backticks (a leading `-` allowed, for
  /// error codes). Quoted text and everything else is prose.
  static func names(in text: String) -> [String] {
    let prose = text.replacing(try! Regex(#""[^"]*""#), with: "")
    var names: [String] = []
    for match in prose.matches(of: try! Regex(#"\bstruct ([A-Za-z_][A-Za-z0-9_]*)"#)) {
      names.append("struct " + String(match.output[1].substring!))
    }
    for match in prose.matches(of: try! Regex(#"([A-Za-z_][A-Za-z0-9_]*)\("#)) {
      names.append(String(match.output[1].substring!) + "()")
    }
    for match in prose.matches(of: try! Regex(#"`(-?[A-Za-z_][A-Za-z0-9_]*)`"#)) {
      names.append(String(match.output[1].substring!))
    }
    return names
  }

  /// Every name of every `/// Linux:` line in Kernel/**/*.swift, with where it is (`file:line`).
  static func sourceEntries() throws -> [LinuxAPIEntry: String] {
    var entries: [LinuxAPIEntry: String] = [:]
    let walker = FileManager.default.enumerator(atPath: root + "/Kernel")
    while let path = walker?.nextObject() as? String {
      guard path.hasSuffix(".swift") else { continue }
      let file = "Kernel/" + path
      let text = try String(contentsOfFile: root + "/" + file, encoding: .utf8)
      let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
      for (index, line) in lines.enumerated() {
        let trimmed = line.drop(while: { $0 == " " })
        guard trimmed.hasPrefix("/// Linux:") else { continue }
        for name in names(in: String(trimmed.dropFirst("/// Linux:".count))) {
          entries[LinuxAPIEntry(name: name, file: file)] = "\(file):\(index + 1)"
        }
      }
    }
    return entries
  }

  /// The rows of docs/linux-api.md: each line that starts with "| `", its first cell the
  /// Linux name in backticks, its third the file in backticks.
  static func rows(of doc: String) -> [LinuxAPIEntry] {
    let unquote = CharacterSet.whitespaces.union(CharacterSet(charactersIn: "`"))
    return doc.split(separator: "\n").filter { $0.hasPrefix("| `") }.map { line in
      let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: unquote) }
      return LinuxAPIEntry(name: cells[0], file: cells.count > 2 ? cells[2] : "")
    }
  }
}

@Suite("LinuxAPITable")
struct LinuxAPITableTests {
  let source: [LinuxAPIEntry: String]
  let rows: [LinuxAPIEntry]

  init() throws {
    source = try LinuxAPITable.sourceEntries()
    let doc = try String(contentsOfFile: LinuxAPITable.root + "/docs/linux-api.md", encoding: .utf8)
    rows = LinuxAPITable.rows(of: doc)
  }

  /// Both parsers found something: a moved Kernel/ or doc would otherwise pass.
  @Test func bothSidesAreFound() {
    #expect(source.count > 50, "few `/// Linux:` names under \(LinuxAPITable.root)/Kernel")
    #expect(rows.count > 50, "few rows in docs/linux-api.md")
  }

  /// (a) Each name of a `/// Linux:` line has a row naming its file.
  @Test func everyLinuxNameHasARow() {
    let documented = Set(rows)
    for (entry, place) in source.sorted(by: { $0.value < $1.value })
    where !documented.contains(entry) {
      Issue.record("`\(entry.name)` (\(place)) has no row for its file in docs/linux-api.md")
    }
  }

  /// (b) Each row's name is in some `/// Linux:` line; (c) the file the row names exists
  /// and has a `/// Linux:` line giving that name.
  @Test func everyRowNamesALinuxLine() {
    let names = Set(source.keys.map(\.name))
    for row in rows {
      let path = LinuxAPITable.root + "/" + row.file
      if !names.contains(row.name) {
        Issue.record("row `\(row.name)`: in no `/// Linux:` line of Kernel/")
      } else if row.file.isEmpty || !FileManager.default.fileExists(atPath: path) {
        Issue.record("row `\(row.name)`: file '\(row.file)' does not exist")
      } else if source[row] == nil {
        Issue.record("row `\(row.name)`: \(row.file) has no `/// Linux:` line naming it")
      }
    }
  }

  /// No row twice.
  @Test func noRowTwice() {
    var seen = Set<LinuxAPIEntry>()
    for row in rows where !seen.insert(row).inserted {
      Issue.record("\(row) has two rows in docs/linux-api.md")
    }
  }
}
