import Synchronization

/// One CPU's mailbox of thread-context work: a work word and its argument, posted by any
/// CPU and taken by the CPU that owns the mailbox, from its idle loop.
///
/// The work word is the whole protocol: `empty`, `filling` (a poster has claimed the
/// mailbox and is writing the argument), or the work itself (any other value, published
/// with its argument). A poster claims with a compare-exchange from `empty`, so of two
/// concurrent posters exactly one wins the mailbox; the other sees it busy. The owner
/// reads the argument before it frees the mailbox, so a new post cannot overwrite an
/// argument that has not been read.
///
/// The argument lives wherever the caller keeps it (a field next to the word): the
/// closures read and write it, and the word's orderings make those plain accesses safe.
public enum IdleMailbox {
  /// No work.
  public static let empty: UInt = 0
  /// Claimed by a poster that is writing the argument; not yet work.
  public static let filling: UInt = 1

  /// Claims the mailbox in `word`, stores the argument through `storeArgument`, and
  /// publishes `work`. Returns false, having written nothing, if the mailbox was not
  /// empty. Any context; never waits.
  /// - Precondition: `work` is neither `empty` nor `filling`.
  public static func tryPost(
    _ work: UInt, to word: borrowing Atomic<UInt>, storingArgument storeArgument: () -> Void
  ) -> Bool {
    precondition(work != empty && work != filling, "work word collides with a mailbox state")
    // Acquire pairs with the release in take(): the owner's read of the previous
    // argument is done before we overwrite it.
    guard word.compareExchange(expected: empty, desired: filling, ordering: .acquiring).exchanged else {
      return false
    }
    storeArgument()
    // Release pairs with the acquire in take(): the argument is written first.
    word.store(work, ordering: .releasing)
    return true
  }

  /// Takes the posted work and its argument (read through `loadArgument`), freeing the
  /// mailbox; nil if none is published. Only the mailbox's owner calls it, so a load and
  /// a store suffice: no other CPU frees the mailbox.
  public static func take(
    from word: borrowing Atomic<UInt>, loadingArgument loadArgument: () -> UInt
  ) -> (work: UInt, argument: UInt)? {
    // Acquire pairs with the release in tryPost(): the argument is visible.
    let work = word.load(ordering: .acquiring)
    guard work != empty && work != filling else { return nil }
    let argument = loadArgument()
    // Release pairs with the acquiring claim in tryPost(): the argument was read
    // before the next poster may write it.
    word.store(empty, ordering: .releasing)
    return (work, argument)
  }

  /// Whether the mailbox holds work or a post in progress. Relaxed: for waiting.
  public static func isBusy(_ word: borrowing Atomic<UInt>) -> Bool {
    word.load(ordering: .relaxed) != empty
  }
}
