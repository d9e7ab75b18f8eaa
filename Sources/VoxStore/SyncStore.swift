import VoxCore

/// A profile waiting in the outbox, as it will be pushed: the speaker's current row (tombstone
/// or not) and the newest outbox row it covers.
public struct OutboxItem: Sendable, Equatable {
    public var record: ProfileRecord
    /// Outbox rows of this speaker up to this id are covered by `record`; rows added later
    /// (newer writes) stay queued.
    public var upTo: Int64
    /// Failed pushes so far.
    public var attempts: Int

    public init(record: ProfileRecord, upTo: Int64, attempts: Int) {
        self.record = record
        self.upTo = upTo
        self.attempts = attempts
    }
}

/// A profile the sync worker gave up pushing.
public struct DeadLetterRecord: Sendable, Equatable {
    public var id: Int64
    public var speakerID: String
    public var version: UInt64
    public var attempts: Int
    public var error: String
    public var failedAt: Int64
}

/// The sync worker's side of the local store: reads and completes outbox rows, keeps dead
/// letters and the pull cursor, and applies changes pulled from other instances under the same
/// last-writer-wins rule as PostgreSQL.
///
/// Its own SQLite connection to the cache worker's file (WAL: readers never block the writer;
/// `busy_timeout` covers the short write transactions of both). Not thread-safe: one thread.
public final class SyncStore {
    public let configuration: StoreConfiguration
    public let rules: ProfileRules
    private let database: SQLiteDatabase

    public init(configuration: StoreConfiguration) throws(StoreError) {
        self.configuration = configuration
        self.rules = ProfileRules(dimension: configuration.dimension, model: configuration.model)
        database = try ProfileStore.open(configuration)
    }

    // MARK: Outbox

    /// Due outbox rows, oldest first: at most `limit`.
    public func dueOutbox(now: Int64, limit: Int) throws(StoreError) -> [OutboxPlanner.Row] {
        let statement = try database.prepare("SELECT id, speaker_id, attempts FROM outbox WHERE next_attempt_at <= ?1 ORDER BY id LIMIT ?2")
        statement.bind(1, now)
        statement.bind(2, Int64(limit))
        var rows: [OutboxPlanner.Row] = []
        while try statement.step() {
            rows.append(.init(id: statement.int64(0), speakerID: statement.string(1), attempts: Int(statement.int64(2))))
        }
        return rows
    }

    /// A profile row that cannot be read back (its vectors do not fit the store): it can never
    /// be pushed, so the caller dead-letters it instead of failing every batch it is in.
    public struct CorruptRow: Sendable, Equatable {
        public var speakerID: String
        public var version: UInt64
        public var upTo: Int64
        public var attempts: Int
        public var error: String
    }

    /// The current rows of `speakers` and the outbox rows they cover, read in one snapshot so
    /// that every covered outbox row refers to a version no newer than the row read. Speakers
    /// without a profile row (which a write never leaves) come back with nothing to push and
    /// are completed by the caller; rows that cannot be decoded come back as `corrupt`.
    public func snapshot(_ speakers: [(speakerID: String, attempts: Int)]) throws(StoreError) -> (items: [OutboxItem], orphans: [(speakerID: String, upTo: Int64)], corrupt: [CorruptRow]) {
        try database.execute("BEGIN")
        defer { try? database.execute("COMMIT") }
        let row = try database.prepare("""
            SELECT speaker_id, embedding, samples, threshold, metadata, version, origin, updated_at, deleted
            FROM profiles WHERE speaker_id = ?1
            """)
        // The most tried row counts, also when a newer write (attempts 0) joined it meanwhile.
        let newest = try database.prepare("SELECT max(id), max(attempts) FROM outbox WHERE speaker_id = ?1")
        var items: [OutboxItem] = []
        var orphans: [(speakerID: String, upTo: Int64)] = []
        var corrupt: [CorruptRow] = []
        for (speakerID, attempts) in speakers {
            newest.reset()
            newest.bind(1, speakerID)
            guard try newest.step() else { continue }
            let upTo = newest.int64(0)
            let attempts = max(attempts, Int(newest.int64(1)))
            row.reset()
            row.bind(1, speakerID)
            if try row.step() {
                do {
                    items.append(OutboxItem(record: try ProfileStore.record(from: row, configuration: configuration), upTo: upTo, attempts: attempts))
                } catch {
                    corrupt.append(CorruptRow(
                        speakerID: speakerID, version: UInt64(bitPattern: row.int64(5)), upTo: upTo, attempts: attempts, error: error.message))
                }
            } else {
                orphans.append((speakerID, upTo))
            }
        }
        return (items, orphans, corrupt)
    }

    /// Moves a row that cannot be read back to the dead letters, with the outbox rows it covers.
    public func deadLetter(_ row: CorruptRow, now: Int64) throws(StoreError) {
        try database.transaction { () throws(StoreError) in
            let insert = try database.prepare("INSERT INTO dead_letters (speaker_id, version, attempts, error, failed_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            insert.bind(1, row.speakerID)
            insert.bind(2, Int64(bitPattern: row.version))
            insert.bind(3, Int64(row.attempts))
            insert.bind(4, String(("local row unreadable: " + row.error).prefix(1000)))
            insert.bind(5, now)
            _ = try insert.step()
            let delete = try database.prepare("DELETE FROM outbox WHERE speaker_id = ?1 AND id <= ?2")
            delete.bind(1, row.speakerID)
            delete.bind(2, row.upTo)
            _ = try delete.step()
        }
    }

    /// The pushes of these speakers committed remotely: their covered outbox rows are done.
    public func complete(_ done: [(speakerID: String, upTo: Int64)]) throws(StoreError) {
        guard !done.isEmpty else { return }
        try database.transaction { () throws(StoreError) in
            let delete = try database.prepare("DELETE FROM outbox WHERE speaker_id = ?1 AND id <= ?2")
            for (speakerID, upTo) in done {
                delete.reset()
                delete.bind(1, speakerID)
                delete.bind(2, upTo)
                _ = try delete.step()
            }
        }
    }

    /// The server refused this speaker's row: try it again after `nextAttemptAt`.
    public func reschedule(_ item: OutboxItem, attempts: Int, nextAttemptAt: Int64, error: String) throws(StoreError) {
        let update = try database.prepare("UPDATE outbox SET attempts = ?3, next_attempt_at = ?4, last_error = ?5 WHERE speaker_id = ?1 AND id <= ?2")
        update.bind(1, item.record.speakerID)
        update.bind(2, item.upTo)
        update.bind(3, Int64(attempts))
        update.bind(4, nextAttemptAt)
        update.bind(5, String(error.prefix(1000)))
        _ = try update.step()
    }

    /// The server refused this speaker's row too often: it moves to the dead letters, and the
    /// rows behind it go on.
    public func deadLetter(_ item: OutboxItem, attempts: Int, error: String, now: Int64) throws(StoreError) {
        try database.transaction { () throws(StoreError) in
            let insert = try database.prepare("INSERT INTO dead_letters (speaker_id, version, attempts, error, failed_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            insert.bind(1, item.record.speakerID)
            insert.bind(2, Int64(bitPattern: item.record.version))
            insert.bind(3, Int64(attempts))
            insert.bind(4, String(error.prefix(1000)))
            insert.bind(5, now)
            _ = try insert.step()
            let delete = try database.prepare("DELETE FROM outbox WHERE speaker_id = ?1 AND id <= ?2")
            delete.bind(1, item.record.speakerID)
            delete.bind(2, item.upTo)
            _ = try delete.step()
        }
    }

    /// Rows waiting and the enqueue time (unix ms) of the oldest.
    public func outboxSummary() throws(StoreError) -> (count: Int, oldestEnqueuedAt: Int64?) {
        let statement = try database.prepare("SELECT count(*), min(enqueued_at) FROM outbox")
        _ = try statement.step()
        let count = Int(statement.int64(0))
        return (count, count == 0 ? nil : statement.int64(1))
    }

    // MARK: Dead letters

    /// The oldest `limit` dead letters and how many there are.
    public func deadLetters(limit: Int) throws(StoreError) -> (letters: [DeadLetterRecord], total: Int) {
        let total = Int(try database.integer("SELECT count(*) FROM dead_letters"))
        let statement = try database.prepare("SELECT id, speaker_id, version, attempts, error, failed_at FROM dead_letters ORDER BY id LIMIT ?1")
        statement.bind(1, Int64(limit))
        var letters: [DeadLetterRecord] = []
        while try statement.step() {
            letters.append(DeadLetterRecord(
                id: statement.int64(0), speakerID: statement.string(1), version: UInt64(bitPattern: statement.int64(2)),
                attempts: Int(statement.int64(3)), error: statement.string(4), failedAt: statement.int64(5)))
        }
        return (letters, total)
    }

    /// Puts dead letters back into the outbox with fresh attempts (`id` nil: all of them).
    /// The speaker's current row is what will be pushed. Returns how many were requeued.
    public func retryDeadLetters(id: Int64?, now: Int64) throws(StoreError) -> Int {
        try database.transaction { () throws(StoreError) -> Int in
            let filter = id == nil ? "" : "WHERE d.id = ?2"
            let requeue = try database.prepare("""
                INSERT INTO outbox (speaker_id, version, enqueued_at)
                SELECT d.speaker_id, coalesce(p.version, d.version), ?1
                FROM dead_letters d LEFT JOIN profiles p ON p.speaker_id = d.speaker_id \(filter)
                ORDER BY d.id
                """)
            requeue.bind(1, now)
            if let id { requeue.bind(2, id) }
            _ = try requeue.step()
            let count = database.changes
            let delete = try database.prepare("DELETE FROM dead_letters \(id == nil ? "" : "WHERE id = ?1")")
            if let id { delete.bind(1, id) }
            _ = try delete.step()
            return count
        }
    }

    // MARK: Pull

    /// The persisted pull cursor.
    public func pullCursor() throws(StoreError) -> PullCursor {
        let statement = try database.prepare("SELECT key, value FROM sync_state WHERE key LIKE 'pull_%'")
        var values: [String: String] = [:]
        while try statement.step() { values[statement.string(0)] = statement.string(1) }
        let after = values["pull_after_transaction"].flatMap(Int64.init).map { ($0, values["pull_after_speaker"] ?? "") }
        return PullCursor(
            complete: values["pull_complete"].flatMap(Int64.init) ?? 0,
            horizon: values["pull_horizon"].flatMap(Int64.init), after: after)
    }

    /// Applies remote rows under last-writer-wins on `(version, origin)` and saves `cursor`, in
    /// one transaction: a crash leaves either both or neither. Returns the speakers whose local
    /// row changed (for the cache to reload). Rows must have been validated by the caller.
    public func applyRemote(_ records: [ProfileRecord], cursor: PullCursor) throws(StoreError) -> [String] {
        try database.transaction { () throws(StoreError) -> [String] in
            let upsert = try database.prepare("""
                INSERT INTO profiles (speaker_id, embedding, samples, threshold, metadata, version, origin, updated_at, deleted)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                ON CONFLICT (speaker_id) DO UPDATE SET
                    embedding = excluded.embedding, samples = excluded.samples, threshold = excluded.threshold,
                    metadata = excluded.metadata, version = excluded.version, origin = excluded.origin,
                    updated_at = excluded.updated_at, deleted = excluded.deleted
                WHERE (excluded.version, excluded.origin) > (profiles.version, profiles.origin)
                """)
            var changed: [String] = []
            for record in records {
                upsert.reset()
                upsert.bind(profile: record)
                _ = try upsert.step()
                if database.changes > 0 { changed.append(record.speakerID) }
            }
            try save(cursor)
            return changed
        }
    }

    private func save(_ cursor: PullCursor) throws(StoreError) {
        try database.execute("DELETE FROM sync_state WHERE key LIKE 'pull_%'")
        let insert = try database.prepare("INSERT INTO sync_state (key, value) VALUES (?1, ?2)")
        var values = [("pull_complete", String(cursor.complete))]
        if let horizon = cursor.horizon { values.append(("pull_horizon", String(horizon))) }
        if let after = cursor.after {
            values.append(("pull_after_transaction", String(after.transaction)))
            values.append(("pull_after_speaker", after.speakerID))
        }
        for (key, value) in values {
            insert.reset()
            insert.bind(1, key)
            insert.bind(2, value)
            _ = try insert.step()
        }
    }

    /// Every row, tombstones included, ordered by speaker id (tests compare stores with it).
    public func allRows() throws(StoreError) -> [ProfileRecord] {
        let statement = try database.prepare("""
            SELECT speaker_id, embedding, samples, threshold, metadata, version, origin, updated_at, deleted
            FROM profiles ORDER BY speaker_id
            """)
        var rows: [ProfileRecord] = []
        while try statement.step() { rows.append(try ProfileStore.record(from: statement, configuration: configuration)) }
        return rows
    }
}
