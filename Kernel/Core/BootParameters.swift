// The kernel command line: which CPUs to bring up, and whatever else the keys it is
// parsed with describe (the image adds its test keys, such as `ktest=`).
//
// Semantics follow Linux's kernel/smp.c (`nosmp`, `maxcpus=`, `nr_cpus=`, smp_init()):
// `nr_cpus` is the hard limit on possible CPUs, `maxcpus` only limits how many are brought
// online at boot, and `nosmp` or `maxcpus=0` keeps the boot CPU alone. Anything odd is kept
// as a diagnostic for the kernel to print, never a reason to stop booting.

/// What `BootParameters.parse(_:)` found wrong with a command-line token.
public enum BootParameterDiagnostic: Equatable, Sendable {
  /// A key Lockstep does not know; listed once however often it repeats.
  case unknown(name: [UInt8])
  /// A value that does not parse as a non-negative integer (`maxcpus=abc`, `nr_cpus=-1`,
  /// `maxcpus=`, `nr_cpus=0x`); the token is ignored.
  case malformed(name: [UInt8], value: [UInt8])
  /// A value that parses but is not allowed (`nr_cpus=0`); the token is ignored, as Linux does.
  case outOfRange(name: [UInt8], value: Int)
  /// A flag given a value (`nosmp=1`); the flag counts as given and the value is
  /// ignored, as Linux's `nosmp` handler ignores its argument.
  case unexpectedValue(name: [UInt8])
  /// A value key without `=` (`maxcpus`); the token is ignored.
  case missingValue(name: [UInt8])
}

/// How many CPUs may exist and how many come online at boot.
public struct CPULimits: Equatable, Sendable {
  /// CPUs that may ever come online. Linux: nr_cpu_ids / cpu_possible_mask.
  public var possible: Int
  /// CPUs brought online by the boot CPU, itself included. Linux: setup_max_cpus in smp_init().
  public var bootOnline: Int

  /// Creates limits.
  ///
  /// - Parameters:
  ///   - possible: CPUs that may exist.
  ///   - bootOnline: CPUs to start at boot, `1...possible`.
  public init(possible: Int, bootOnline: Int) {
    self.possible = possible
    self.bootOnline = bootOnline
  }
}

/// The parsed kernel command line.
///
/// Context: parsed once on the boot CPU at init; allocates.
public struct BootParameters: Sendable {
  /// `nosmp` or `maxcpus=0` was given: only the boot CPU comes online.
  public var smpDisabled = false
  /// `maxcpus=N` (Linux: setup_max_cpus), N >= 0; `nil` means no limit.
  public var maxCPUs: Int?
  /// `nr_cpus=N` hard limit on possible CPUs (Linux: nr_cpu_ids), N > 0; `nil` means none.
  public var nrCPUs: Int?
  /// Everything wrong with the command line, in the order found.
  public var diagnostics: [BootParameterDiagnostic] = []
  /// The keys recognised: the kernel's own and those the caller added.
  private let keys: [BootParameterKey]
  /// The value bytes of each recognised key's last valid occurrence, indexed like
  /// `keys`; an empty array for a flag that is present.
  private var settings: [[UInt8]?]

  /// The parameters of an empty command line that knows the kernel's keys and `extraKeys`.
  public init(extraKeys: [BootParameterKey] = []) {
    keys = BootParameterKey.kernel + extraKeys
    settings = Array(repeating: nil, count: keys.count)
  }

  /// Parses a command line.
  ///
  /// Tokens are separated by spaces, tabs and newlines; a NUL byte ends the line. Each token
  /// is `key` or `key=value`; a later occurrence of a key overrides an earlier one, as in
  /// Linux. A bad token is reported in `diagnostics` and has no effect.
  /// - Parameters:
  ///   - commandLine: the command-line bytes (any content, any length).
  ///   - extraKeys: keys recognised besides the kernel's own (`BootParameterKey.kernel`).
  /// - Returns: the parameters.
  public static func parse(
    _ commandLine: UnsafeRawBufferPointer, extraKeys: [BootParameterKey] = []
  ) -> BootParameters {
    var parameters = BootParameters(extraKeys: extraKeys)
    var position = 0
    while let token = nextToken(in: commandLine, from: &position) {
      parameters.apply(UnsafeRawBufferPointer(rebasing: commandLine[token]))
    }
    parameters.maxCPUs = parameters.integer("maxcpus")
    parameters.nrCPUs = parameters.integer("nr_cpus")
    parameters.smpDisabled = parameters.has("nosmp") || parameters.maxCPUs == 0
    return parameters
  }

  /// The index in `keys` of the key called `name`, if recognised.
  private func index(of name: UnsafeRawBufferPointer) -> Int? {
    keys.firstIndex { $0.matches(name) }
  }

  private func index(of name: StaticString) -> Int? {
    name.withUTF8Buffer { index(of: UnsafeRawBufferPointer($0)) }
  }

  /// Finds the next token at or after `position` and moves `position` past it.
  private static func nextToken(
    in line: UnsafeRawBufferPointer, from position: inout Int
  ) -> Range<Int>? {
    func isSeparator(_ byte: UInt8) -> Bool {
      byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n")
        || byte == UInt8(ascii: "\r")
    }
    while position < line.count && isSeparator(line[position]) {
      position += 1
    }
    let start = position
    while position < line.count && line[position] != 0 && !isSeparator(line[position]) {
      position += 1
    }
    if start == position {
      // End of the buffer, or a NUL: the line is over.
      position = line.count
      return nil
    }
    return start..<position
  }

  /// Applies one token, recording what is wrong with it.
  private mutating func apply(_ token: UnsafeRawBufferPointer) {
    var nameEnd = 0
    while nameEnd < token.count && token[nameEnd] != UInt8(ascii: "=") {
      nameEnd += 1
    }
    let name = UnsafeRawBufferPointer(rebasing: token[..<nameEnd])
    let value =
      nameEnd < token.count ? UnsafeRawBufferPointer(rebasing: token[(nameEnd + 1)...]) : nil
    guard let slot = index(of: name) else {
      let unknown = BootParameterDiagnostic.unknown(name: Array(name))
      if !diagnostics.contains(unknown) {
        diagnostics.append(unknown)
      }
      return
    }
    switch (keys[slot].kind, value) {
    case (.flag, nil):
      settings[slot] = []
    case (.flag, _):
      settings[slot] = []
      diagnostics.append(.unexpectedValue(name: Array(name)))
    case (_, nil):
      diagnostics.append(.missingValue(name: Array(name)))
    case (.list, let value?):
      settings[slot] = Array(value)
    case (.integer, let value?):
      applyInteger(slot, name: name, value: value)
    case (.pair, let value?):
      applyPair(slot, name: name, value: value)
    }
  }

  /// Validates and stores `key=value` for an integer key.
  private mutating func applyInteger(
    _ slot: Int, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer
  ) {
    guard let number = BootParameterKey.integer(value) else {
      diagnostics.append(.malformed(name: Array(name), value: Array(value)))
      return
    }
    guard keys[slot].allowed.contains(number) else {
      diagnostics.append(.outOfRange(name: Array(name), value: number))
      return
    }
    settings[slot] = Array(value)
  }

  /// Validates and stores `key=N:M` for a pair key.
  private mutating func applyPair(
    _ slot: Int, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer
  ) {
    guard let (first, second) = Self.pair(in: value) else {
      diagnostics.append(.malformed(name: Array(name), value: Array(value)))
      return
    }
    guard keys[slot].allowed.contains(first) else {
      diagnostics.append(.outOfRange(name: Array(name), value: first))
      return
    }
    guard keys[slot].allowedSecond.contains(second) else {
      diagnostics.append(.outOfRange(name: Array(name), value: second))
      return
    }
    settings[slot] = Array(value)
  }

  /// Splits `N:M` into its two integers; nil unless there is exactly one colon and
  /// both sides parse.
  private static func pair(in value: UnsafeRawBufferPointer) -> (Int, Int)? {
    guard let colon = value.firstIndex(of: UInt8(ascii: ":")) else { return nil }
    let first = BootParameterKey.integer(UnsafeRawBufferPointer(rebasing: value[..<colon]))
    let second = BootParameterKey.integer(UnsafeRawBufferPointer(rebasing: value[(colon + 1)...]))
    guard let first, let second else { return nil }
    return (first, second)
  }

  /// Splits `a,b,c` into names, skipping empty ones.
  private static func names(in list: UnsafeRawBufferPointer) -> [[UInt8]] {
    var names: [[UInt8]] = []
    var current: [UInt8] = []
    for byte in list {
      if byte == UInt8(ascii: ",") {
        if !current.isEmpty { names.append(current) }
        current = []
      } else {
        current.append(byte)
      }
    }
    if !current.isEmpty { names.append(current) }
    return names
  }

  /// The value of a recognised key given as `key=N`.
  ///
  /// - Parameter key: a key name, such as `"ap_timeout_ms"`.
  /// - Returns: N (decimal or `0x` hex), or `nil` if the key is absent, unrecognised, a flag,
  ///   or its value is not an integer.
  public func integer(_ key: StaticString) -> Int? {
    guard let slot = index(of: key), keys[slot].kind != .flag, let value = settings[slot] else {
      return nil
    }
    return value.withUnsafeBytes { BootParameterKey.integer($0) }
  }

  /// The value of a recognised key given as `key=N:M`.
  ///
  /// - Parameter key: a pair key's name, such as `"test_slow_ap"`.
  /// - Returns: (N, M), or `nil` if the key is absent, not a pair key, or was invalid.
  public func pair(_ key: StaticString) -> (Int, Int)? {
    guard let slot = index(of: key), keys[slot].kind == .pair, let value = settings[slot] else {
      return nil
    }
    return value.withUnsafeBytes { Self.pair(in: $0) }
  }

  /// The names of a recognised list key given as `key=a,b,c`, in order, empty names
  /// skipped; empty if the key is absent or not a list key.
  ///
  /// - Parameter key: a list key's name, such as `"ktest"`.
  public func list(_ key: StaticString) -> [[UInt8]] {
    guard let slot = index(of: key), keys[slot].kind == .list, let value = settings[slot] else {
      return []
    }
    return value.withUnsafeBytes { Self.names(in: $0) }
  }

  /// Whether a recognised flag was given.
  ///
  /// - Parameter flag: a flag name, such as `"bench"`.
  /// - Returns: `true` if the bare flag appeared; `false` for value keys and unknown names.
  public func has(_ flag: StaticString) -> Bool {
    guard let slot = index(of: flag), keys[slot].kind == .flag else { return false }
    return settings[slot] != nil
  }

  /// The CPU limits for a machine with `presentCPUs` CPUs.
  ///
  /// `nr_cpus` only lowers the possible count (Linux: `nr_cpus > 0 && nr_cpus < nr_cpu_ids`);
  /// `maxcpus` then caps how many come online in smp_init(), the boot CPU always among them.
  /// - Parameter presentCPUs: CPUs found (the boot CPU included), at least 1.
  /// - Returns: possible and boot-online CPU counts.
  public func limits(presentCPUs: Int) -> CPULimits {
    precondition(presentCPUs >= 1, "the boot CPU is always present")
    let possible = min(presentCPUs, nrCPUs ?? presentCPUs)
    let bootOnline = smpDisabled ? 1 : min(possible, max(maxCPUs ?? possible, 1))
    return CPULimits(possible: possible, bootOnline: bootOnline)
  }

  /// Compares command-line bytes (such as a `ktests` name) with a static string.
  ///
  /// - Parameters:
  ///   - bytes: the bytes.
  ///   - string: the string to compare with, as UTF-8.
  /// - Returns: `true` if they are the same bytes.
  public static func equals(_ bytes: [UInt8], _ string: StaticString) -> Bool {
    string.withUTF8Buffer { utf8 in
      utf8.count == bytes.count && zip(utf8, bytes).allSatisfy { $0 == $1 }
    }
  }
}
