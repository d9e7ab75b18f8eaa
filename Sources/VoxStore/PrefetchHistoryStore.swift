/// One read of a speaker, as the prefetch worker learns from it.
public struct PrefetchAccess: Sendable, Equatable {
    public var speaker: String
    /// Unix milliseconds.
    public var atMilliseconds: Int64

    public init(speaker: String, atMilliseconds: Int64) {
        self.speaker = speaker
        self.atMilliseconds = atMilliseconds
    }
}

/// The prefetch worker's memory across restarts: `<data_dir>/prefetch.sqlite`, a file of its
/// own (the profile store's writers never wait for it, and deleting it loses nothing but
/// what was learned).
///
/// Advisory data, so it is written with `synchronous=NORMAL` in WAL mode: a power cut may lose
/// the last commits (never corrupt the file), which costs a few seconds of learning. Appends
/// come in batches, one transaction each. Bounded by `prune`, which the worker runs now and
/// then: by age and by count, oldest first.
///
/// Not thread-safe, like `SQLiteDatabase`: one thread uses it.
public final class PrefetchHistoryStore {
    static let migrations: [String] = [
        // 1: access times, and a little state (the adaptive threshold, the last prune).
        """
        CREATE TABLE accesses (
            speaker  TEXT NOT NULL,
            at_ms    INTEGER NOT NULL   -- unix ms
        );
        CREATE INDEX accesses_at ON accesses(at_ms);
        CREATE TABLE state (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
        """,
    ]

    public let path: String
    private let database: SQLiteDatabase
    private let insert: Statement

    public init(path: String) throws(StoreError) {
        self.path = path
        database = try SQLiteDatabase(path: path)
        try database.execute("PRAGMA busy_timeout = 5000")
        try ProfileStore.enableWAL(database)
        try database.execute("PRAGMA synchronous = NORMAL")
        try Schema.migrate(database, migrations: Self.migrations)
        insert = try database.prepare("INSERT INTO accesses (speaker, at_ms) VALUES (?1, ?2)")
    }

    /// Appends `accesses` in one transaction: all or none.
    public func append(_ accesses: [PrefetchAccess]) throws(StoreError) {
        guard !accesses.isEmpty else { return }
        try database.transaction { () throws(StoreError) in
            for access in accesses {
                insert.reset()
                insert.bind(1, access.speaker)
                insert.bind(2, access.atMilliseconds)
                _ = try insert.step()
            }
        }
    }

    /// The most recent `limit` accesses, oldest first (the order a replay wants).
    public func loadAll(limit: Int) throws(StoreError) -> [PrefetchAccess] {
        var accesses: [PrefetchAccess] = []
        accesses.reserveCapacity(min(max(0, limit), 1 << 20))
        try forEach(limit: limit) { accesses.append($0) }
        return accesses
    }

    /// Hands the most recent `limit` accesses to `body`, oldest first, one row at a time: a
    /// start-up replay of millions of rows holds none of them at once.
    public func forEach(limit: Int, _ body: (PrefetchAccess) -> Void) throws(StoreError) {
        let statement = try database.prepare("""
            SELECT speaker, at_ms FROM (SELECT rowid, speaker, at_ms FROM accesses ORDER BY at_ms DESC, rowid DESC LIMIT ?1)
            ORDER BY at_ms, rowid
            """)
        statement.bind(1, Int64(max(0, limit)))
        while try statement.step() {
            body(PrefetchAccess(speaker: statement.string(0), atMilliseconds: statement.int64(1)))
        }
    }

    /// Accesses stored.
    public func count() throws(StoreError) -> Int {
        Int(try database.integer("SELECT count(*) FROM accesses"))
    }

    /// Deletes accesses before `olderThan` or after `newerThan` (unix ms; stamped in the
    /// future by a clock that has since stepped back), then the oldest beyond `maxEvents`, and
    /// notes the time of this prune (`now`). Returns how many rows went. Freed pages are
    /// reused by later appends, so the file stays near the size of `maxEvents` rows.
    @discardableResult
    public func prune(olderThan: Int64, newerThan: Int64 = .max, maxEvents: Int, now: Int64) throws(StoreError) -> Int {
        try database.transaction { () throws(StoreError) -> Int in
            let byAge = try database.prepare("DELETE FROM accesses WHERE at_ms < ?1 OR at_ms > ?2")
            byAge.bind(1, olderThan)
            byAge.bind(2, newerThan)
            _ = try byAge.step()
            var removed = database.changes
            let excess = try database.integer("SELECT count(*) FROM accesses") - Int64(max(0, maxEvents))
            if excess > 0 {
                let byCount = try database.prepare(
                    "DELETE FROM accesses WHERE rowid IN (SELECT rowid FROM accesses ORDER BY at_ms, rowid LIMIT ?1)")
                byCount.bind(1, excess)
                _ = try byCount.step()
                removed += database.changes
            }
            try setState("last_prune_ms", integer: now)
            return removed
        }
    }

    /// When `prune` last ran (unix ms); nil if never.
    public func lastPrune() throws(StoreError) -> Int64? {
        try state("last_prune_ms").map { $0.int64(0) }
    }

    /// Keeps the adaptive threshold's value for the next start.
    public func saveThreshold(_ value: Double) throws(StoreError) {
        let statement = try database.prepare("INSERT OR REPLACE INTO state (key, value) VALUES ('threshold', ?1)")
        statement.bind(1, value)
        _ = try statement.step()
    }

    /// The threshold saved last; nil if none was (or it is not a finite number).
    public func loadThreshold() throws(StoreError) -> Double? {
        guard let value = try state("threshold")?.double(0), value.isFinite else { return nil }
        return value
    }

    private func setState(_ key: String, integer value: Int64) throws(StoreError) {
        let statement = try database.prepare("INSERT OR REPLACE INTO state (key, value) VALUES (?1, ?2)")
        statement.bind(1, key)
        statement.bind(2, value)
        _ = try statement.step()
    }

    /// The statement positioned on the state row of `key`, or nil.
    private func state(_ key: String) throws(StoreError) -> Statement? {
        let statement = try database.prepare("SELECT value FROM state WHERE key = ?1")
        statement.bind(1, key)
        return try statement.step() ? statement : nil
    }
}
