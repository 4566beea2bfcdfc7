// The five ACPI targets share one executable: build/fuzz/acpi_rsdp, acpi_sdt, acpi_madt,
// acpi_fadt and acpi_chain are links to build/fuzz/acpi, and the name it is started under
// picks the target. Five instrumented builds of the same parsers were most of the fuzz
// step's time in `make check`; one build does for all.

/// The ACPI targets by executable name.
let acpiTargets: [(name: String, fuzz: (UnsafeRawBufferPointer) -> Void)] = [
  ("acpi_rsdp", fuzzRSDP),
  ("acpi_sdt", fuzzSDT),
  ("acpi_madt", fuzzMADT),
  ("acpi_fadt", fuzzFADT),
  ("acpi_chain", fuzzChain),
]

/// The target this process runs, chosen once from the name it was started under.
let selectedTarget: (UnsafeRawBufferPointer) -> Void = {
  let name = CommandLine.arguments.first?.split(separator: "/").last.map(String.init) ?? ""
  guard let target = acpiTargets.first(where: { $0.name == name }) else {
    fatalError("started as '\(name)'; run it as one of \(acpiTargets.map(\.name))")
  }
  return target.fuzz
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzACPI(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  selectedTarget(UnsafeRawBufferPointer(start: data, count: size))
  return 0
}
