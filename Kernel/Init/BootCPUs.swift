import Synchronization

/// Finding the CPUs, starting them, and saying what came of it (Linux: smp_init()).
enum BootCPUs {
  /// Default quiet bound of a bring-up attempt (`ap_timeout_ms=` overrides): the
  /// attempt ends once no AP has come online for this long. Under TCG on two host cores
  /// 64 APs come up in a few milliseconds; see docs/benchmarks.md.
  static let defaultAPTimeoutMilliseconds = 200

  /// Builds the CPU table from the MADT under the command line's limits, sets up the
  /// per-CPU blocks, and makes the boot CPU CPU 0. Returns the limits applied.
  static func setUp(madt: MADT?, parameters: BootParameters) -> CPULimits {
    let bootAPIC = LocalAPIC.currentID()
    let table: CPUTable
    let limits: CPULimits
    if let madt {
      let xAPICOnly = LocalAPIC.mode == .xAPIC
      let present = CPUTable.build(
        processors: madt.processors, bootAPICID: bootAPIC, limit: maxCPUs, xAPICOnly: xAPICOnly)
      limits = parameters.limits(presentCPUs: present.count)
      table = CPUTable.build(
        processors: madt.processors, bootAPICID: bootAPIC, limit: limits.possible, xAPICOnly: xAPICOnly)
    } else {
      log("smp: no MADT; running on the boot CPU alone")
      table = CPUTable.bootOnly(bootAPIC)
      limits = parameters.limits(presentCPUs: 1)
    }
    for diagnostic in table.diagnostics { log("smp: \(line: describe(diagnostic))") }
    log(
      "smp: \(table.count) possible CPU(s), starting \(limits.bootOnline); APIC mode \(LocalAPIC.mode == .x2APIC ? "x2APIC" : "xAPIC")"
    )
    CPUs.setUp(table)
    SMPStop.setUp(parameters)
    X86_64Platform.setUpCalls(
      watchdogTimeoutMilliseconds: parameters.integer("csd_timeout_ms") ?? 1000,
      panicAfterMilliseconds: parameters.integer("panic_on_ipistall") ?? 0)
    let boot = PerCPU.block(.boot)
    PerCPU.install(boot)
    boot.pointee.stackTop = KernelSymbols.bootStackTop
    boot.pointee.stackBottom = KernelSymbols.bootStackBottom
    PerCPU.loadDescriptors(boot)
    Idle.pollMaximumNanoseconds = UInt64(parameters.integer("idle_poll_us") ?? 0) * 1000
    Threads.setUp()
    boot.pointee.lifecycle.markBootCPUOnline()
    CPUs.setActive(.boot, true)
    return limits
  }

  /// Starts the APs the limits allow, measuring the bring-up floor first if asked.
  static func startSecondaries(
    limits: CPULimits, parameters: BootParameters, measureFloor: Bool
  ) -> APStartup.Outcome {
    BootFaultInjection.configure(parameters)
    let timeout = parameters.integer("ap_timeout_ms") ?? defaultAPTimeoutMilliseconds
    let policy = APStartup.Policy(quietNanoseconds: UInt64(timeout) * 1_000_000)
    let floor = measureFloor ? APStartup.measureFloor(count: limits.bootOnline, policy: policy) : nil
    var outcome = APStartup.bringUp(count: limits.bootOnline, policy: policy)
    outcome.floorNanoseconds = floor
    return outcome
  }

  /// Prints Linux's "Brought up N CPUs", the CPU table, and one machine-readable line.
  static func announce(_ outcome: APStartup.Outcome) {
    let online = CPUs.online
    log("Brought up \(online.count) CPUs")
    var apicIDs: [Int] = []
    for cpu in CPUs.possible {
      let block = PerCPU.block(cpu)
      let state = CPUs.state(of: cpu)
      let latency =
        state == .online && cpu != .boot
        ? Clock.ticksToNanoseconds(block.pointee.onlineTSC &- outcome.firstINITTicks) / 1000 : 0
      log(
        "  CPU \(cpu)  APIC \(block.pointee.apicID.rawValue)  \(name(state))\(cpu == .boot ? "  (boot)" : "")  \(latency) us"
      )
      if state == .online { apicIDs.append(Int(block.pointee.apicID.rawValue)) }
    }
    // cpulist form, so 64 CPUs fit a line. APIC IDs are listed in CPU order, which
    // is ascending on every machine QEMU builds; cpulist needs ascending input.
    var line: LogLine = "smp: online cpus="
    line.append(cpuList: online.map { $0.rawValue })
    line.append(" apic=")
    line.append(cpuList: apicIDs.sorted())
    log(line)
    if !outcome.failed.isEmpty {
      var failed: LogLine = "smp: offline after bring-up: cpus="
      failed.append(cpuList: outcome.failed.map { $0.rawValue })
      log(failed)
    }
  }

  private static func name(_ state: CPUState) -> StaticString {
    switch state {
    case .possible: "offline (not started)"
    case .starting: "STARTING (a bug: every AP has its verdict by now)"
    case .retrying: "RETRYING (a bug: every AP has its verdict by now)"
    case .online: "online"
    case .failed: "offline (did not come online)"
    case .dying: "DYING (a bug: no CPU goes down during boot)"
    case .dead: "offline (taken down)"
    case .stopped: "STOPPED (a stop came during boot)"
    }
  }

  private static func describe(_ diagnostic: CPUTableDiagnostic) -> LogLine {
    switch diagnostic {
    case .bootCPUMissingFromMADT(let id):
      "boot CPU's APIC ID \(id.rawValue) is not in the MADT; it is CPU 0 anyway"
    case .duplicate(let id): "APIC ID \(id.rawValue) listed twice; second entry ignored"
    case .notEnabled(let id, let capable):
      "APIC ID \(id.rawValue) disabled in the MADT\(capable ? " (online capable)" : ""); not started"
    case .overLimit(let id): "APIC ID \(id.rawValue) beyond nr_cpus; not possible"
    case .tooMany(let id): "APIC ID \(id.rawValue) beyond maxCPUs; ignored"
    case .notAddressable(let id): "APIC ID \(id.rawValue) cannot be addressed in xAPIC mode; ignored"
    }
  }
}
