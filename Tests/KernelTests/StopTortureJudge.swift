import Synchronization

/// How a torture operation's result is judged against where its function ran.
extension StopTortureOperation {
  /// The outcome of a call that returned `failure` (nil: success), checked against
  /// `probe`: its function ran in the right context and at most once per CPU; a
  /// refusal (one of `refusals`, else an error) ran it nowhere; a success ran it on
  /// exactly `mustRun` if given, only within `mayRun` if given, somewhere if the call
  /// can refuse with `.notFound`, and returned the code the function did. `fixed`,
  /// given when no hotplug operation ran during the call, is exactly where it had to
  /// run: a success must match it, and `.notFound` needs it empty.
  func judge(
    _ failure: StopError?, _ probe: UnsafeMutablePointer<StopTortureProbe>, refusals: [StopTortureOutcome],
    mustRun: CPUSet? = nil, mayRun: CPUSet? = nil, fixed: CPUSet?
  ) -> StopTortureOutcome {
    let ran = probe.pointee.ranOn
    tally.functionsRan.wrappingAdd(probe.pointee.totalRuns, ordering: .relaxed)
    if fixed != nil { tally.exactChecks.wrappingAdd(1, ordering: .relaxed) }
    if probe.pointee.contextErrors.load(ordering: .relaxed) > 0 {
      return error("its function ran outside a stopper, or with interrupts on in a multi-CPU stop or a call")
    }
    if let twice = probe.pointee.ranTwiceOn {
      return error("its function ran more than once on CPU \(twice)")
    }
    let outcome = classify(failure)
    switch outcome {
    case .ran, .ranWithCode:
      return judgeSuccess(
        outcome, ran: ran, mustsRunSomewhere: refusals.contains(.notFound), mustRun, mayRun, fixed)
    case .error:
      return .error
    default:
      guard refusals.contains(outcome) else {
        return error("refused (\(outcome.name)), which it cannot be here")
      }
      guard ran.isEmpty else {
        return error("refused (\(outcome.name)), but its function ran on \(line: list(ran))")
      }
      if outcome == .notFound, let fixed, !fixed.isEmpty {
        return error("not found, though \(line: list(fixed)) stayed online throughout")
      }
      return outcome
    }
  }

  private func judgeSuccess(
    _ outcome: StopTortureOutcome, ran: CPUSet, mustsRunSomewhere: Bool, _ mustRun: CPUSet?,
    _ mayRun: CPUSet?,
    _ fixed: CPUSet?
  ) -> StopTortureOutcome {
    if code != 0 && outcome == .ran && !ran.isEmpty {
      return error("its function returned \(Int(code)) on \(line: list(ran)), but the call reported success")
    }
    if outcome == .ranWithCode && ran.isEmpty {
      return error("reported its function's code, but it ran nowhere")
    }
    if mustsRunSomewhere && ran.isEmpty { return error("reported success, but its function ran nowhere") }
    if let mustRun, ran != mustRun {
      return error("its function ran on \(line: list(ran)), not on \(line: list(mustRun))")
    }
    if let mayRun, !ran.isSubset(of: mayRun) {
      return error("its function ran on \(line: list(ran)), outside \(line: list(mayRun))")
    }
    if let fixed, ran != fixed {
      return error(
        "its function ran on \(line: list(ran)), but the online set fixed meant \(line: list(fixed))")
    }
    return outcome
  }

  /// The outcome a stop error stands for; `.error` (counted) for one no call here gives.
  private func classify(_ failure: StopError?) -> StopTortureOutcome {
    switch failure {
    case nil: return .ran
    case .failed(let result) where result == code && code != 0: return .ranWithCode
    case .failed(let result): return error("failed with \(Int(result)), a code its function never returns")
    case .notFound: return .notFound
    case .again: return .again
    case .invalidCPU: return .invalidCPU
    case .busy: return error("failed with .busy")
    case .deadlock: return error("failed with .deadlock (stopTwoCPUs retries it)")
    }
  }

  /// `{0-3,5}`.
  func list(_ set: CPUSet) -> LogLine {
    var line: LogLine = "{"
    line.append(cpuList: set.map { $0.rawValue })
    line.append("}")
    return line
  }
}
