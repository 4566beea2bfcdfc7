import Synchronization

@_extern(c, "context_switch") private func context_switch(
  _ save: UnsafeMutablePointer<UInt64>, _ load: UInt64)
@_extern(c, "thread_start") private func thread_start()

/// Kernel threads on x86-64: the kernel's `Scheduler`, the stack switch it stands on,
/// and creating threads on a chosen CPU.
extension X86_64Platform: SchedPlatform {
  /// Boot/switch.asm's `context_switch`: the callee-saved registers and RFLAGS stay on
  /// `from`'s stack, its RSP in `from.savedContext`. Interrupts off.
  static func switchContext(
    from: UnsafeMutablePointer<KernelThread>, to: UnsafeMutablePointer<KernelThread>
  ) {
    let save = UnsafeMutableRawPointer(from).assumingMemoryBound(to: UInt64.self)
    context_switch(save, to.pointee.savedContext)
  }

  static func armTimer(_ timer: UnsafeMutablePointer<Timer>, deadline: UInt64) {
    CPUTimers.arm(timer, deadline: deadline)
  }

  static func cancelTimer(_ timer: UnsafeMutablePointer<Timer>) -> Bool {
    CPUTimers.cancel(timer)
  }

  static var wakeThreadTimerFunction: CallFunction { wakeThreadFromTimer }
  static var tickTimerFunction: CallFunction { tickFromTimer }
}

/// A sleep's timeout: wakes the thread the timer's argument points to.
private let wakeThreadFromTimer: CallFunction = { argument in
  Threads.scheduler.wake(argument!.assumingMemoryBound(to: KernelThread.self))
}

/// The tick: the running thread's slice is over.
private let tickFromTimer: CallFunction = { _ in
  Threads.scheduler.tickFired()
}

/// Creating, starting and ending kernel threads (Linux: kthread).
enum Threads {
  nonisolated(unsafe) private static var instance: Scheduler<X86_64Platform>? = nil

  /// The kernel's scheduler. - Precondition: `setUp` has run.
  static var scheduler: Scheduler<X86_64Platform> { instance! }

  /// Whether the scheduler exists yet (interrupts taken during boot come before it).
  static var isSetUp: Bool { instance != nil }

  /// Stack of a kernel thread, in 4 KiB pages, with an unmapped guard page below it
  /// (GuardedStacks): an overflow faults, and the report names the thread.
  static let stackPages = 4

  /// The control blocks of the APs' idle threads, allocated up front: an AP adopts its
  /// own before it may take the heap lock.
  nonisolated(unsafe) private static var apIdleThreads:
    UnsafeMutablePointer<UnsafeMutablePointer<KernelThread>>? =
      nil

  /// Normal threads bound to each CPU that have not ended (created, runnable, running or
  /// sleeping), the boot CPU's `main` among them: a CPU with any cannot go offline
  /// (`Hotplug.cpuDown`), since threads are never migrated. Relaxed: counted before the
  /// online check in `create`, read inside the stop that takes a CPU down.
  nonisolated(unsafe) private static var residents: UnsafeMutablePointer<Atomic<Int>>? = nil

  /// Normal threads of `cpu` that have not ended.
  static func residentThreads(on cpu: CPUIndex) -> Int {
    residents![cpu.rawValue].load(ordering: .relaxed)
  }

  /// Creates the run queues for every possible CPU and makes the boot CPU's flow its
  /// `main` thread, with an idle thread beside it; allocates the APs' idle threads.
  /// Boot CPU, after `CPUs.setUp`, before any AP starts; interrupts off.
  static func setUp() {
    instance = Scheduler<X86_64Platform>(cpuCount: CPUs.possibleCount)
    let counts = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: CPUs.possibleCount)
    for cpu in 0..<CPUs.possibleCount { (counts + cpu).initialize(to: Atomic<Int>(cpu == 0 ? 1 : 0)) }
    residents = counts  // the boot CPU's 1 is `main`
    let idles = UnsafeMutablePointer<UnsafeMutablePointer<KernelThread>>.allocate(
      capacity: CPUs.possibleCount)
    for cpu in CPUs.possible where cpu != .boot {
      (idles + cpu.rawValue).initialize(
        to: allocate(ThreadName("idle", cpu.rawValue), priority: .idle, on: cpu, function: nil, argument: nil)
      )
    }
    apIdleThreads = idles
    let main = allocate(ThreadName("main"), priority: .normal, on: .boot, function: nil, argument: nil)
    checkContextOffset(main)
    main.pointee.stackTop = KernelSymbols.bootStackTop
    main.pointee.stackBottom = KernelSymbols.bootStackBottom
    scheduler.adopt(main, asIdle: false)
    let idle = create(
      ThreadName("idle", 0), priority: .idle, on: .boot, function: idleEntry, argument: nil)
    scheduler.setIdleThread(idle, of: .boot)
  }

  /// For an AP that has just come online: its own flow becomes its idle thread.
  /// Interrupts off; allocates nothing.
  static func adoptIdleFlow(of cpu: CPUIndex, stackBottom: UInt64, stackTop: UInt64) {
    let idle = apIdleThreads![cpu.rawValue]
    idle.pointee.stackBottom = stackBottom
    idle.pointee.stackTop = stackTop
    scheduler.adopt(idle, asIdle: true)
  }

  /// A thread bound to `cpu` that will run `function(argument)` once started; it does
  /// not run until `start`. Its stack has a guard page, owned by the thread's name.
  /// Thread context (it allocates); running out of stack space is fatal.
  /// Linux: kthread_create_on_cpu().
  static func create(
    _ name: ThreadName, priority: ThreadPriority = .normal, on cpu: CPUIndex, function: CallFunction?,
    argument: UnsafeMutableRawPointer?
  ) -> UnsafeMutablePointer<KernelThread> {
    // A CPU whose idle thread seldom runs (the boot CPU, busy with `main`) reclaims
    // its ended threads here too, before it takes another stack.
    reapDeadThreads()
    if priority == .normal {
      // Counted before the check: a `cpuDown` whose stop comes after the count sees it
      // and refuses; one whose stop came first has marked the CPU dying, seen here.
      residents![cpu.rawValue].wrappingAdd(1, ordering: .relaxed)
      let state = CPUs.state(of: cpu)
      guard state == .online else {
        Panic.halt("threads: cannot create \(name) on CPU \(cpu): it is not online (state \(Int(state.rawValue)))")
      }
    }
    guard let stack = GuardedStacks.allocate(pages: stackPages, owner: name.prefix, number: name.number ?? 0)
    else { Panic.halt("threads: no stack for \(name): the guarded stack region is full") }
    let thread = allocate(name, priority: priority, on: cpu, function: function, argument: argument)
    thread.pointee.stackBottom = stack.bottom
    thread.pointee.stackTop = stack.top
    thread.pointee.savedContext = firstFrame(for: thread)
    return thread
  }

  /// Makes a created thread runnable.
  /// Linux: wake_up_process() on a new kthread.
  static func start(_ thread: UnsafeMutablePointer<KernelThread>) {
    scheduler.wake(thread)
  }

  private static func allocate(
    _ name: ThreadName, priority: ThreadPriority, on cpu: CPUIndex, function: CallFunction?,
    argument: UnsafeMutableRawPointer?
  ) -> UnsafeMutablePointer<KernelThread> {
    let thread = UnsafeMutablePointer<KernelThread>.allocate(capacity: 1)
    thread.initialize(
      to: KernelThread(name: name, priority: priority, cpu: cpu, function: function, argument: argument))
    return thread
  }

  /// The frame `context_switch` pops the first time it switches to `thread` (see
  /// Boot/switch.asm): zeroed callee-saved registers but RBX = the thread, RFLAGS with
  /// interrupts off, and `thread_start` to return to. Returns the saved RSP.
  private static func firstFrame(for thread: UnsafeMutablePointer<KernelThread>) -> UInt64 {
    let top = UnsafeMutablePointer<UInt64>(bitPattern: UInt(thread.pointee.stackTop))!
    let frame = top - 8
    frame.initialize(repeating: 0, count: 8)  // r15 r14 r13 r12 rbx rbp rflags return
    frame[4] = UInt64(UInt(bitPattern: thread))
    frame[6] = 1 << 1  // RFLAGS: IF clear; bit 1 always reads 1 (SDM Vol. 1 §3.4.3)
    frame[7] = UInt64(
      UInt(bitPattern: unsafeBitCast(thread_start as @convention(c) () -> Void, to: UnsafeRawPointer.self)))
    return UInt64(UInt(bitPattern: frame))
  }

  /// `switchContext` saves RSP through the thread's own address: `savedContext` must
  /// be the first field. Checked once at boot rather than assumed.
  private static func checkContextOffset(_ thread: UnsafeMutablePointer<KernelThread>) {
    thread.pointee.savedContext = 0x5A5A_0001
    let first = UnsafeRawPointer(thread).load(as: UInt64.self)
    precondition(first == 0x5A5A_0001, "KernelThread.savedContext is not at offset 0")
  }

  /// Reclaims the threads that ended on this CPU: their stacks and control blocks.
  /// Thread context (it frees).
  static func reapDeadThreads() {
    var dead = scheduler.takeDeadThreads()
    while let thread = dead.removeFirst() {
      GuardedStacks.release(top: thread.pointee.stackTop)
      thread.deinitialize(count: 1)
      thread.deallocate()
    }
  }

  /// Bookkeeping for a thread whose function returned, just before it ends.
  static func threadEnds(_ thread: UnsafeMutablePointer<KernelThread>) {
    if thread.pointee.priority == .normal {
      residents![thread.pointee.cpu.rawValue].wrappingAdd(-1, ordering: .relaxed)
    }
  }

  /// The idle thread of a CPU whose own flow is something else (the boot CPU).
  private static let idleEntry: CallFunction = { _ in Idle.run() }
}

/// Where every new thread starts (from Boot/switch.asm's `thread_start`), interrupts
/// off, on its own stack: interrupts on, the thread's function, then its end.
@c(thread_main)
func threadMain(_ raw: UnsafeMutableRawPointer) {
  let thread = raw.assumingMemoryBound(to: KernelThread.self)
  CPUInstructions.enableInterrupts()
  thread.pointee.function?(thread.pointee.argument)
  Threads.threadEnds(thread)
  Threads.scheduler.exitCurrent()
}
