/// The sync worker's decisions about outbox rows: which speakers go into the next batch, what a
/// failure means, and what happens to a row the server refuses.
///
/// Pure: rows, error codes, attempt counts and random draws come in; decisions go out. The sync
/// worker's shell reads and writes SQLite and PostgreSQL accordingly.
public struct OutboxPlanner: Sendable, Equatable {
    /// One due outbox row, oldest first.
    public struct Row: Sendable, Equatable {
        public var id: Int64
        public var speakerID: String
        /// Failed pushes of this row so far.
        public var attempts: Int

        public init(id: Int64, speakerID: String, attempts: Int = 0) {
            self.id = id
            self.speakerID = speakerID
            self.attempts = attempts
        }
    }

    /// What becomes of a speaker whose row the server refused for good.
    public enum RejectionOutcome: Equatable, Sendable {
        /// Try again after `delay`; it has now failed `attempts` times.
        case retry(attempts: Int, delay: Duration)
        /// Give up: move it to the dead letters after `attempts` failures.
        case deadLetter(attempts: Int)
    }

    /// Speakers per batch (one multi-row upsert). Default 50.
    public var batchSize: Int
    /// Failed pushes of a refused row before it is dead-lettered. Default 5.
    public var maxAttempts: Int
    /// Delay between pushes of a refused row.
    public var retryBackoff: ExponentialBackoff

    public init(batchSize: Int = 50, maxAttempts: Int = 5, retryBackoff: ExponentialBackoff = .init(initial: .milliseconds(200), maximum: .seconds(30))) {
        precondition(batchSize >= 1 && maxAttempts >= 1, "a planner needs batchSize >= 1 and maxAttempts >= 1")
        self.batchSize = batchSize
        self.maxAttempts = maxAttempts
        self.retryBackoff = retryBackoff
    }

    /// Coalesces due rows into the next batch: each speaker once (a push sends the profile's
    /// current row, so ten updates cost one upsert), in the order of its oldest row, at most
    /// `batchSize` speakers. Also returns the attempts so far of each chosen speaker (its most
    /// tried row).
    public func nextBatch(_ rows: [Row]) -> [(speakerID: String, attempts: Int)] {
        var order: [String] = []
        var attempts: [String: Int] = [:]
        for row in rows {
            if let seen = attempts[row.speakerID] {
                attempts[row.speakerID] = max(seen, row.attempts)
                continue
            }
            guard order.count < batchSize else { continue }
            order.append(row.speakerID)
            attempts[row.speakerID] = row.attempts
        }
        return order.map { ($0, attempts[$0]!) }
    }

    /// The fate of a speaker the server refused for good, which had failed `attempts` times
    /// before this one; `random` is a uniform draw in `0..<1` for the jitter.
    public func afterRejection(previousAttempts attempts: Int, random: Double) -> RejectionOutcome {
        let failed = attempts + 1
        guard failed < maxAttempts else { return .deadLetter(attempts: failed) }
        return .retry(attempts: failed, delay: retryBackoff.delay(attempt: attempts, random: random))
    }
}

/// Whether a PostgreSQL failure is the server's (or the network's) passing trouble, or a refusal
/// of the data that no retry of the same row will change.
public enum SyncFailureKind: Equatable, Sendable {
    /// No connection, timeout, server starting or shutting down, too many clients, a deadlock,
    /// a schema not in place yet: back off, count it against the circuit breaker, keep the rows.
    case transient
    /// The server refused the data (a CHECK constraint, a value out of range): retry the rows
    /// of the batch one by one so the others pass; count attempts against the refused one.
    case rejected

    /// Classifies a failure by its SQLSTATE (nil: no SQLSTATE, e.g. a connection error).
    /// Only classes 22 (data exception) and 23 (integrity constraint violation) are rejections;
    /// everything else — including 42 (a missing table or column: a deployment problem, not
    /// the row's fault) — is transient, so misconfiguration never dead-letters good data.
    public static func classify(sqlState: String?) -> SyncFailureKind {
        guard let sqlState, sqlState.utf8.count == 5 else { return .transient }
        switch sqlState.prefix(2) {
        case "22", "23": return .rejected
        default: return .transient
        }
    }
}
