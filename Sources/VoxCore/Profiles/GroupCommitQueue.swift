/// The decisions of group commit: writes that arrive while a commit is running wait, and all
/// of them go into the next transaction together, so one fsync acknowledges many writes.
///
/// Starting a commit the moment a write arrives is right for a lone writer but wrong for
/// many: when a batch of 32 is acknowledged, its writers send their next writes a few
/// microseconds apart, the first one starts a batch of one at once, and the other 31 wait a
/// whole fsync for it — batches alternate 1, 31, 1, 31 and every write pays two fsyncs.
/// So after a batch the queue expects as many writes as were just acknowledged plus those
/// already waiting, and holds the next commit until they are there or the hold times out
/// (the shell's timer; `holdTimedOut`), as PostgreSQL's `commit_delay` and MySQL's
/// `binlog_group_commit_sync_delay` do, but only when there is reason to expect company: a
/// lone writer's batches are of one, so it expects one and never waits.
///
/// A pure value: the I/O shell enqueues, runs the batches it is told to start, arms the timers
/// it is told to arm, and reports when each batch finishes. There is never more than one
/// batch in flight, so batches commit in arrival order.
public struct GroupCommitQueue<Item> {
    /// What the shell does next.
    public enum Action {
        case none
        /// Commit these writes in one transaction now.
        case startBatch([Item])
        /// Call `holdTimedOut(id)` after the hold time, unless a batch starts first (then
        /// the call is a harmless no-op).
        case armHoldTimer(id: UInt64)
    }

    /// The largest batch; more waiting writes form the following batch.
    public let maxBatch: Int
    private var waiting: [Item] = []
    private var committing = false
    /// How many writes the next batch is expected to have.
    private var expected = 1
    /// The id of the running hold, if a timer is armed.
    private var hold: UInt64?
    private var nextHoldID: UInt64 = 0

    public init(maxBatch: Int) {
        precondition(maxBatch > 0)
        self.maxBatch = maxBatch
    }

    /// Writes waiting for a batch (not counting the one being committed).
    public var waitingCount: Int { waiting.count }
    public var isCommitting: Bool { committing }

    /// A write arrived.
    public mutating func enqueue(_ item: Item) -> Action {
        waiting.append(item)
        return committing ? .none : startOrHold()
    }

    /// The running batch committed (or failed); its writers may well write again.
    public mutating func batchFinished() -> Action {
        precondition(committing, "no batch was running")
        committing = false
        expected = min(maxBatch, waiting.count + lastBatchCount)
        return waiting.isEmpty ? .none : startOrHold()
    }

    /// The hold `id` ran out: commit whatever is waiting.
    public mutating func holdTimedOut(id: UInt64) -> Action {
        guard hold == id, !committing, !waiting.isEmpty else { return .none }
        return .startBatch(takeBatch())
    }

    private var lastBatchCount = 0

    private mutating func startOrHold() -> Action {
        if waiting.count >= expected { return .startBatch(takeBatch()) }
        guard hold == nil else { return .none }
        nextHoldID += 1
        hold = nextHoldID
        return .armHoldTimer(id: nextHoldID)
    }

    private mutating func takeBatch() -> [Item] {
        committing = true
        hold = nil
        let count = min(maxBatch, waiting.count)
        let batch = Array(waiting.prefix(count))
        waiting.removeFirst(count)
        lastBatchCount = count
        return batch
    }
}

extension GroupCommitQueue.Action: Equatable where Item: Equatable {}
