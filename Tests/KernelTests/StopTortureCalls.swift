import Synchronization

/// Each kind of torture operation: the call, then its result judged. `online` is the
/// online set read at the start; `window` the hotplug window then (StopTortureTally).
extension StopTortureOperation {
  func stopOne(_ online: CPUSet, _ window: Int?) -> StopTortureOutcome {
    let probe = StopTortureProbe.make(context: .stopper, code: code)
    defer { StopTortureProbe.free(probe) }
    var failure: StopError? = nil
    do throws(StopError) { try Self.stoppers.stopOneCPU(first, StopTortureProbe.stopFunction, probe) } catch {
      failure = error
    }
    return judge(
      failure, probe, refusals: isValid(first) ? [.notFound] : [.invalidCPU], mustRun: single(first),
      fixed: tally.windowHeld(since: window) ? online.intersection(single(first)) : nil)
  }

  /// Queues the work in a buffer of its own and waits (bounded: 10 s) until the stopper
  /// lets go of it. A buffer not let go is leaked with its probe: the stopper may
  /// still run it.
  func stopOneNoWait(_ online: CPUSet, _ window: Int?) -> StopTortureOutcome {
    let probe = StopTortureProbe.make(context: .stopper, code: 0)
    let work = UnsafeMutablePointer<StopWork<X86_64Platform>>.allocate(capacity: 1)
    work.initialize(to: StopWork())
    let queued = Self.stoppers.stopOneCPUNoWait(first, StopTortureProbe.stopFunction, probe, work: work)
    if queued {
      let queuedAt = Clock.nanoseconds()
      while work.pointee.isBusy {
        if Clock.nanoseconds() - queuedAt > 10_000_000_000 {
          return error("the work queued on CPU \(first) is still busy after 10 s; its buffer is leaked")
        }
        Threads.scheduler.sleep(nanoseconds: 50_000)
      }
    }
    let failure: StopError? = queued ? nil : (isValid(first) ? .notFound : .invalidCPU(first))
    let outcome = judge(
      failure, probe, refusals: isValid(first) ? [.notFound] : [.invalidCPU], mustRun: single(first),
      fixed: tally.windowHeld(since: window) ? online.intersection(single(first)) : nil)
    work.deinitialize(count: 1)
    work.deallocate()
    StopTortureProbe.free(probe)
    return outcome
  }

  func stopTwo(_ online: CPUSet, _ window: Int?) -> StopTortureOutcome {
    let probe = StopTortureProbe.make(context: .multiStop, code: code)
    defer { StopTortureProbe.free(probe) }
    var failure: StopError? = nil
    do throws(StopError) {
      try Self.stoppers.stopTwoCPUs(first, second, StopTortureProbe.stopFunction, probe)
    } catch {
      failure = error
    }
    let valid = isValid(first) && isValid(second) && first != second
    let bothOnline = valid && online.contains(first) && online.contains(second)
    return judge(
      failure, probe, refusals: valid ? [.notFound] : [.invalidCPU], mustRun: single(first),
      fixed: tally.windowHeld(since: window) ? (bothOnline ? single(first) : CPUSet()) : nil)
  }

  /// `stopCPUs` or `tryStopCPUs`: runs once on each CPU of the set that is online.
  func stopCPUs(_ online: CPUSet, _ window: Int?) -> StopTortureOutcome {
    let probe = StopTortureProbe.make(context: .stopper, code: code)
    defer { StopTortureProbe.free(probe) }
    let set = cpus ?? CPUSet()
    var failure: StopError? = nil
    do throws(StopError) {
      if kind == .tryStopCPUs {
        try Self.stoppers.tryStopCPUs(set, StopTortureProbe.stopFunction, probe)
      } else {
        try Self.stoppers.stopCPUs(set, StopTortureProbe.stopFunction, probe)
      }
    } catch {
      failure = error
    }
    return judge(
      failure, probe, refusals: kind == .tryStopCPUs ? [.notFound, .again] : [.notFound], mayRun: set,
      fixed: tally.windowHeld(since: window) ? set.intersection(online) : nil)
  }

  /// `stopMachine`: with `cpus` nil it runs on the first online CPU, CPU 0 (which never
  /// goes down); else once on each online CPU of `cpus`, as many as the function
  /// counted inside the stop.
  func stopMachine(_ window: Int?) -> StopTortureOutcome {
    let probe = StopTortureProbe.make(context: .machine, code: code, machineCPUs: cpus)
    defer { StopTortureProbe.free(probe) }
    let online = CPUs.online
    var failure: StopError? = nil
    do throws(StopError) {
      try Self.stoppers.stopMachine(StopTortureProbe.stopFunction, probe, cpus: cpus)
    } catch {
      failure = error
    }
    let runners = probe.pointee.machineRunners.load(ordering: .relaxed)
    if failure == nil || failure == .failed(code), runners >= 0, probe.pointee.ranOn.count != runners {
      return error("ran on \(probe.pointee.ranOn.count) CPUs, but \(runners) online CPUs were asked")
    }
    let fixed = cpus.map { $0.intersection(online) } ?? single(.boot)
    return judge(
      failure, probe, refusals: [], mustRun: cpus == nil ? single(.boot) : nil, mayRun: cpus,
      fixed: tally.windowHeld(since: window) ? fixed : nil)
  }

  /// `stopMachineCPUsLocked` with the hotplug lock taken here: the online set read
  /// under it is the one the stop uses, so where the function runs is known exactly.
  func stopMachineLocked() -> StopTortureOutcome {
    let probe = StopTortureProbe.make(context: .machine, code: code, machineCPUs: cpus)
    defer { StopTortureProbe.free(probe) }
    Self.stoppers.hotplugLock.lock(in: Threads.scheduler)
    let online = CPUs.online
    var failure: StopError? = nil
    do throws(StopError) {
      try Self.stoppers.stopMachineCPUsLocked(StopTortureProbe.stopFunction, probe, cpus: cpus)
    } catch {
      failure = error
    }
    Self.stoppers.hotplugLock.unlock(in: Threads.scheduler)
    let exact = cpus.map { $0.intersection(online) } ?? single(.boot)
    return judge(failure, probe, refusals: [], mustRun: exact, mayRun: cpus, fixed: exact)
  }

  /// A waiting single cross-call (Linux: smp_call_function_single()).
  func crossCall(_ online: CPUSet, _ window: Int?) -> StopTortureOutcome {
    let probe = StopTortureProbe.make(context: .crossCall, code: 0)
    defer { StopTortureProbe.free(probe) }
    var failure: StopError? = nil
    var refusal = StopTortureOutcome.ran
    do throws(CrossCallError) {
      try X86_64Platform.calls.callSingle(on: first, StopTortureProbe.callFunction, probe, wait: true)
    } catch {
      // Mapped onto the stop errors, to be judged alike.
      switch error {
      case .offline: (failure, refusal) = (.notFound, .offline)
      case .invalidCPU(let cpu): (failure, refusal) = (.invalidCPU(cpu), .invalidCPU)
      default: return self.error("refused with an error it cannot give for one CPU")
      }
    }
    let outcome = judge(
      failure, probe, refusals: isValid(first) ? [.notFound] : [.invalidCPU], mustRun: single(first),
      fixed: tally.windowHeld(since: window) ? online.intersection(single(first)) : nil)
    return outcome == .notFound ? refusal : outcome
  }

  /// `cpuDown` or `cpuUp` of the target, counted in the hotplug window.
  func hotplug() -> StopTortureOutcome {
    tally.hotplugBegun.wrappingAdd(1, ordering: .sequentiallyConsistent)
    defer { tally.hotplugEnded.wrappingAdd(1, ordering: .sequentiallyConsistent) }
    do throws(HotplugError) {
      if kind == .cpuDown { try Hotplug.cpuDown(first) } else { try Hotplug.cpuUp(first) }
    } catch {
      switch error {
      case .hasThreads where kind == .cpuDown: return .hasThreads
      case .notOnline where kind == .cpuDown:
        return first == cpu ? self.error("not online, but it runs on it") : .notOnline
      case .lastOnlineCPU where kind == .cpuDown: return .lastOnlineCPU
      case .notOffline where kind == .cpuUp: return .notOffline
      default: return self.error(HotplugSuite.describe(error))
      }
    }
    // Its own CPU has this very thread: it cannot have gone down.
    if kind == .cpuDown && first == cpu { return error("took down the CPU its thread runs on") }
    return .ran
  }

  /// `cpu` as a set; empty for a number out of range.
  func single(_ cpu: CPUIndex) -> CPUSet { isValid(cpu) ? CPUSet([cpu]) : CPUSet() }
}
