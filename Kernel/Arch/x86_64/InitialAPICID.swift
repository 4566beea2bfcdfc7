/// The running CPU's APIC ID as CPUID reports it, usable before the local APIC is set
/// up and from any context: CPUID cannot fault, whatever mode the APIC is in (reading
/// the x2APIC ID MSR before the AP switched its APIC to x2APIC mode would #GP).
enum InitialAPICID {
  /// CPUID leaf 0xB EDX (the full x2APIC ID) where the CPU has that leaf, else leaf 1
  /// EBX bits 31:24 (SDM Vol. 2A, CPUID, "Initial APIC ID").
  static func read() -> APICID {
    if CPUInstructions.cpuid(0).eax >= 0xB && CPUInstructions.cpuid(0xB).ebx != 0 {
      return APICID(CPUInstructions.cpuid(0xB).edx)
    }
    return APICID(CPUInstructions.cpuid(1).ebx >> 24)
  }
}
