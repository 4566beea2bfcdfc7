// Fuzz target boot_params: `BootParameters.parse` over arbitrary command lines, with the
// kernel's own keys and a representative set the image adds (every kind: list, flag, integer
// with and without a range, pair), as Kernel/Init and Tests/KernelTests declare them.
//
// Properties checked besides "no crash":
// - every integer key reads back as its last valid occurrence, found by a second tokenizer
//   written here from the documented grammar (separators, NUL ends the line, `-` = `_`);
// - every value that parses as an integer re-prints as the same digits (leading zeros and
//   the `0x` case aside), and the value stays within the key's range;
// - pairs and lists hold what their kinds promise; the CPU limits stay ordered;
// - unknown keys are reported once each.

/// Keys the image adds, as Kernel/Init/BootFaultInjection.swift and
/// Tests/KernelTests/KernelTests.swift declare them (the host builds neither).
let imageKeys = [
  BootParameterKey("ktest", .list),
  BootParameterKey("bench", .flag),
  BootParameterKey("bench_boots", .integer),
  BootParameterKey("stop_runs", .integer, allowed: 1...1_000_000),
  BootParameterKey("test_dead_ap", .integer, allowed: 1...(maxCPUs - 1)),
  BootParameterKey("test_slow_ap", .pair, allowed: 1...(maxCPUs - 1), allowedSecond: 0...60_000),
  BootParameterKey("test_early_ap_fault", .integer, allowed: 1...(maxCPUs - 1)),
]

/// Every key the fuzzed parser knows.
let allKeys = BootParameterKey.kernel + imageKeys

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBootParameters(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let line = UnsafeRawBufferPointer(start: data, count: size)
  let parameters = BootParameters.parse(line, extraKeys: imageKeys)
  let tokens = Tokens.split(line)
  for key in allKeys {
    checkKey(key, parameters, tokens)
  }
  for token in tokens {
    if let value = token.value { checkReprint(value) }
  }
  checkReprint(Array(line))
  checkSummary(parameters)
  return 0
}

/// A token split at its first `=`: the name, and the value if there was an `=`.
struct Token {
  var name: [UInt8]
  var value: [UInt8]?
}

/// A second tokenizer, written from the grammar `BootParameters.parse` documents.
enum Tokens {
  static func split(_ line: UnsafeRawBufferPointer) -> [Token] {
    let separators: [UInt8] = [0x20, 0x09, 0x0A, 0x0D]
    let text = line.prefix { $0 != 0 }
    return text.split(whereSeparator: separators.contains).map { word in
      guard let equals = word.firstIndex(of: UInt8(ascii: "=")) else {
        return Token(name: Array(word), value: nil)
      }
      return Token(name: Array(word[..<equals]), value: Array(word[(equals + 1)...]))
    }
  }

  /// Whether `name` is the key's name, `-` and `_` alike.
  static func matches(_ key: BootParameterKey, _ name: [UInt8]) -> Bool {
    name.withUnsafeBytes { key.matches($0) }
  }
}

/// The key's value as the parser reports it against the last valid occurrence in `tokens`.
func checkKey(_ key: BootParameterKey, _ parameters: BootParameters, _ tokens: [Token]) {
  let values = tokens.filter { Tokens.matches(key, $0.name) }.compactMap(\.value)
  switch key.kind {
  case .integer:
    let valid = values.compactMap { $0.withUnsafeBytes(BootParameterKey.integer) }
      .filter(key.allowed.contains)
    require(parameters.integer(key.name) == valid.last, "\(key.name) is not its last valid value")
  case .pair:
    if let (first, second) = parameters.pair(key.name) {
      require(key.allowed.contains(first), "\(key.name) first number \(first) out of range")
      require(key.allowedSecond.contains(second), "\(key.name) second number \(second) out of range")
    }
  case .list:
    for name in parameters.list(key.name) {
      require(!name.isEmpty && !name.contains(UInt8(ascii: ",")), "\(key.name) list name \(name)")
    }
    if let last = values.last {
      require(
        parameters.list(key.name) == last.split(separator: UInt8(ascii: ",")).map(Array.init),
        "\(key.name) list is not its last value")
    }
  case .flag:
    let given = tokens.contains { Tokens.matches(key, $0.name) }
    require(parameters.has(key.name) == given, "flag \(key.name) presence")
  }
}

/// An integer value prints back as the digits it was written with.
func checkReprint(_ value: [UInt8]) {
  guard let number = value.withUnsafeBytes(BootParameterKey.integer) else { return }
  require(number >= 0, "negative value \(number)")
  let isHex = value.count >= 2 && value[0] == UInt8(ascii: "0") && (value[1] | 0x20) == UInt8(ascii: "x")
  let digits = isHex ? value.dropFirst(2) : value[...]
  var written = String(decoding: digits.drop { $0 == UInt8(ascii: "0") }, as: UTF8.self).lowercased()
  if written.isEmpty { written = "0" }
  require(String(number, radix: isHex ? 16 : 10) == written, "\(number) was written \(written)")
}

/// The derived fields agree with the keys, the limits are ordered, unknown keys appear once.
func checkSummary(_ parameters: BootParameters) {
  require(parameters.maxCPUs == parameters.integer("maxcpus"), "maxCPUs")
  require(parameters.nrCPUs == parameters.integer("nr_cpus"), "nrCPUs")
  require(
    parameters.smpDisabled == (parameters.has("nosmp") || parameters.maxCPUs == 0), "smpDisabled")
  for present in [1, 2, 7, maxCPUs] {
    let limits = parameters.limits(presentCPUs: present)
    require(1 <= limits.bootOnline && limits.bootOnline <= limits.possible, "boot online count")
    require(limits.possible <= present, "more possible CPUs than present")
    require(!parameters.smpDisabled || limits.bootOnline == 1, "SMP disabled but APs online")
  }
  var unknown: [[UInt8]] = []
  for case .unknown(let name) in parameters.diagnostics {
    require(!unknown.contains(name), "unknown key \(name) reported twice")
    require(!allKeys.contains { Tokens.matches($0, name) }, "known key \(name) reported unknown")
    unknown.append(name)
  }
}
