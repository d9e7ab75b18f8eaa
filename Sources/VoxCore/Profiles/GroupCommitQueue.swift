/// The decisions of group commit: writes that arrive while a commit is running wait, and all
/// of them go into the next transaction together, so one fsync acknowledges many writes.
///
/// A pure value: the I/O shell enqueues, runs the batches it is told to start, and reports
/// when each finishes. There is never more than one batch in flight, so batches commit in
/// arrival order.
public struct GroupCommitQueue<Item> {
    /// The largest batch; more waiting writes form the following batch.
    public let maxBatch: Int
    private var waiting: [Item] = []
    private var committing = false

    public init(maxBatch: Int) {
        precondition(maxBatch > 0)
        self.maxBatch = maxBatch
    }

    /// Writes waiting for a batch (not counting the one being committed).
    public var waitingCount: Int { waiting.count }
    public var isCommitting: Bool { committing }

    /// A write arrived. Returns a batch to start now, or nil when it joins the next one.
    public mutating func enqueue(_ item: Item) -> [Item]? {
        waiting.append(item)
        return committing ? nil : takeBatch()
    }

    /// The running batch committed (or failed). Returns the next batch to start, if any.
    public mutating func batchFinished() -> [Item]? {
        precondition(committing, "no batch was running")
        committing = false
        return waiting.isEmpty ? nil : takeBatch()
    }

    private mutating func takeBatch() -> [Item] {
        committing = true
        let count = min(maxBatch, waiting.count)
        let batch = Array(waiting.prefix(count))
        waiting.removeFirst(count)
        return batch
    }
}
