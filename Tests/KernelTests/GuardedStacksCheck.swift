import Synchronization

/// The `boot` suite's checks of `GuardedStacks` and `PageTables`: stacks are mapped
/// and writable, their guard pages are not and name their owner, a released stack is
/// reused, and all of it works the same from an AP.
enum GuardedStacksCheck {
  /// The boot CPU's stacks have 4 pages, the AP's 6, so the AP maps new slots rather
  /// than reuse the boot CPU's released ones.
  static func run() -> TestResult { run(pages: 4) }

  /// Two stacks of `pages` pages on the running CPU; the first released and allocated
  /// again.
  static func run(pages: Int) -> TestResult {
    guard let first = GuardedStacks.allocate(pages: pages, owner: "boot_check", number: 1),
      let second = GuardedStacks.allocate(pages: pages, owner: "boot_check", number: 2)
    else { return .fail("allocate(pages: \(pages)) returned nil") }
    if case .fail(let why) = check(first, pages: pages, number: 1) { return .fail(why) }
    if case .fail(let why) = check(second, pages: pages, number: 2) { return .fail(why) }
    let (low, high) = first.bottom < second.bottom ? (first, second) : (second, first)
    guard low.top + 2 * GuardedStacks.pageBytes <= high.bottom else {
      return .fail("stacks \(hex: low.top) and \(hex: high.bottom) share their unmapped pages")
    }
    GuardedStacks.release(top: first.top)
    guard let again = GuardedStacks.allocate(pages: pages, owner: "boot_check", number: 3) else {
      return .fail("allocate after release returned nil")
    }
    defer {
      GuardedStacks.release(top: again.top)
      GuardedStacks.release(top: second.top)
    }
    guard again == first else {
      return .fail("released stack \(hex: first.bottom) not reused: got \(hex: again.bottom)")
    }
    return check(again, pages: pages, number: 3)
  }

  /// Checks one stack of `pages` pages owned by boot_check/`number`: every page mapped
  /// and holding what is written through its virtual address, the pages below and
  /// above unmapped, the guard page naming the owner, the stack itself naming none,
  /// and code run on it with `callOnStack` finding RSP inside it.
  static func check(_ stack: (bottom: UInt64, top: UInt64), pages: Int, number: Int) -> TestResult {
    let tables = PageTables.current
    let page = GuardedStacks.pageBytes
    guard stack.top - stack.bottom == UInt64(pages) * page, stack.top % 16 == 0 else {
      return .fail("stack \(hex: stack.bottom)-\(hex: stack.top) is not \(pages) pages")
    }
    for address in stride(from: stack.bottom, to: stack.top, by: Int(page)) {
      guard tables.isMapped(address) else { return .fail("stack page \(hex: address) not mapped") }
      let pointer = UnsafeMutablePointer<UInt64>(bitPattern: UInt(address + 8))!
      let pattern = address ^ 0x5A5A_5A5A_5A5A_5A5A
      pointer.pointee = pattern
      guard pointer.pointee == pattern else { return .fail("stack page \(hex: address) lost a write") }
    }
    let guardPage = stack.bottom - page
    guard !tables.isMapped(guardPage), !tables.isMapped(stack.bottom - 1) else {
      return .fail("guard page \(hex: guardPage) is mapped")
    }
    guard !tables.isMapped(stack.top) else { return .fail("gap page \(hex: stack.top) is mapped") }
    for address in [guardPage, stack.bottom - 1] {
      guard let owner = GuardedStacks.guardOwner(of: address),
        owner.number == number, equal(owner.owner, "boot_check")
      else { return .fail("guard address \(hex: address) does not name boot_check/\(number)") }
    }
    for address in [stack.bottom, stack.top - 1, stack.top] where GuardedStacks.guardOwner(of: address) != nil
    {
      return .fail("\(hex: address), outside the guard page, names an owner")
    }
    return checkRunningOn(stack)
  }

  /// Runs a probe on `stack` with `callOnStack`: it must see RSP inside the stack, and
  /// return.
  private static func checkRunningOn(_ stack: (bottom: UInt64, top: UInt64)) -> TestResult {
    var seen: UInt64 = 0
    withUnsafeMutablePointer(to: &seen) { pointer in
      CPUInstructions.callOnStack(top: stack.top, recordStackPointer, UnsafeMutableRawPointer(pointer))
    }
    guard seen >= stack.bottom && seen < stack.top else {
      return .fail(
        "code run on the stack saw RSP \(hex: seen), outside \(hex: stack.bottom)-\(hex: stack.top)")
    }
    return .pass
  }

  /// Whether two owner names spell the same (the guard-page checks compare them).
  static func equal(_ a: StaticString, _ b: StaticString) -> Bool {
    a.withUTF8Buffer { left in b.withUTF8Buffer { right in left.elementsEqual(right) } }
  }

  /// 0 while the AP's check runs, then 1 if it passed, 2 if it failed.
  private static let apVerdict = Atomic<Int>(0)

  /// `run` again, on an AP, from a thread there (`stacks-check/N`; thread context:
  /// allocating from a cross-call's interrupt context would break the heap's rule).
  static func runOnAnAP() -> TestResult {
    guard let cpu = CPUs.online.first(where: { $0.rawValue > 0 }) else { return .skip("no AP online") }
    apVerdict.store(0, ordering: .relaxed)
    let group = ThreadGroup(capacity: 1)
    group.start(ThreadName("stacks-check", cpu.rawValue), on: cpu, runAndReport, nil)
    if let late = group.wait(milliseconds: 2000) { return .fail("the check on CPU \(cpu): \(line: late)") }
    // Acquire pairs with the release in runAndReport.
    return apVerdict.load(ordering: .acquiring) == 1 ? .pass : .fail("the check failed on CPU \(cpu)")
  }

  private static let runAndReport: CallFunction = { _ in
    let result = run(pages: 6)
    if case .fail(let why) = result { KTAP.diagnostic("CPU \(PerCPU.currentCPU): \(line: why)") }
    // Release: the check's writes and diagnostic before the verdict; pairs with the
    // acquire in runOnAnAP().
    apVerdict.store(result.isPass ? 1 : 2, ordering: .releasing)
  }
}

/// Stores the stack pointer it runs on through `info`, for `callOnStack` checks.
private let recordStackPointer: @convention(c) (UnsafeMutableRawPointer?) -> Void = { info in
  info!.storeBytes(of: CPUInstructions.readStackPointer(), as: UInt64.self)
}

extension TestResult {
  fileprivate var isPass: Bool {
    if case .pass = self { return true }
    return false
  }
}
