/// A function other code runs for you: a plain C function pointer and an opaque
/// argument, as Linux's `smp_call_func_t` (a cross-CPU call) and a kthread's
/// `threadfn`. Being a thin pointer, it is stored and called without allocating, which
/// interrupt context requires.
public typealias CallFunction = @convention(c) (UnsafeMutableRawPointer?) -> Void
