import CSQLite
#if canImport(Glibc)
import Glibc
#endif
import VoxCore

/// How the local store is opened.
public struct StoreConfiguration: Sendable {
    public var path: String
    /// Floats per embedding; fixed when the store is created, checked on every later open.
    public var dimension: Int
    /// Model tag of the embeddings; fixed like the dimension.
    public var model: String
    /// This instance's id, recorded as the origin of its writes.
    public var origin: String
    /// SQLite `synchronous`: FULL (default) survives power loss; NORMAL survives a crash of
    /// the process only.
    public var synchronousFull = true

    public init(path: String, dimension: Int, model: String = ProfileRules.defaultModel, origin: String) {
        self.path = path
        self.dimension = dimension
        self.model = model
        self.origin = origin
    }

    /// How the cache and sync workers open the one store file of `configuration`: both with
    /// the same dimension, model and `synchronous`.
    public init(_ configuration: VoxsyncConfiguration, origin: String) {
        self.init(
            path: configuration.dataDirectory + "/voxsync.sqlite", dimension: configuration.embeddingDimension,
            model: configuration.embeddingModel, origin: origin)
        synchronousFull = configuration.sqliteSynchronous == "full"
    }
}

/// Profiles in local SQLite (WAL). Every write puts the profile row and its outbox row in one
/// transaction, so a write is either wholly there (and queued for sync) or not at all.
///
/// Not thread-safe: one store belongs to the one thread that does the cache worker's disk I/O.
public final class ProfileStore {
    public let configuration: StoreConfiguration
    public let rules: ProfileRules
    let database: SQLiteDatabase
    /// Starts at the highest stored version. Read lazily — by `forEachLive`'s scan, or before
    /// the first write when nothing preloads — so that opening a store costs no scan of its
    /// own (a scan of 100 000 profiles is about 70 ms, a third of a restart's budget).
    private var clock: HybridLogicalClock?
    /// Prepared once, reused: preparing costs more than running these one-row statements.
    private var statements: [UnsafeRawPointer: Statement] = [:]

    public init(configuration: StoreConfiguration) throws(StoreError) {
        self.configuration = configuration
        self.rules = ProfileRules(dimension: configuration.dimension, model: configuration.model)
        database = try Self.open(configuration)
    }

    /// An upper bound on the number of profiles, without counting them: no row takes less
    /// than its embedding's bytes of the file. For sizing a preload's arrays once; capacity
    /// that stays unused is never touched and costs no resident memory.
    public func profileCountBound() throws(StoreError) -> Int {
        let bytes = try database.integer("PRAGMA page_count") * database.integer("PRAGMA page_size")
        return Int(bytes) / (configuration.dimension * MemoryLayout<Float>.size) + 1
    }

    /// Stores `profile` (enroll or replace). With `expectedVersion` the write happens only if
    /// the stored version is that one (0: the speaker must not exist). Returns the stored record.
    @discardableResult
    public func put(_ profile: ProfileRecord, expectedVersion: UInt64? = nil, now: Int64) throws(StoreError) -> ProfileRecord {
        try putBatch([(profile, expectedVersion)], now: now)[0].get()
    }

    /// Group commit: stores every write in one transaction (one fsync). A write refused for
    /// its own reasons leaves the others in: an invalid one is refused before the transaction,
    /// and a conditional one runs inside a savepoint, rolled back on a conflict. Returns one
    /// result per write, in order. If the transaction itself cannot commit, or the database
    /// fails an unconditional write, it throws and none of the writes happened.
    public func putBatch(_ writes: [(profile: ProfileRecord, expectedVersion: UInt64?)], now: Int64) throws(StoreError) -> [Result<ProfileRecord, StoreError>] {
        var results: [Result<ProfileRecord, StoreError>?] = writes.map { write -> Result<ProfileRecord, StoreError>? in
            do throws(ProfileRules.Violation) {
                try check(write.profile)
                return nil
            } catch {
                return .failure(StoreError(.invalid(error), error.description))
            }
        }
        guard results.contains(where: { $0 == nil }) else { return results.map { $0! } }
        try database.transaction { () throws(StoreError) in
            for (index, write) in writes.enumerated() where results[index] == nil {
                guard let expected = write.expectedVersion else {
                    // Nothing of its own can refuse an unconditional write that passed the
                    // rules, so it needs no savepoint (two statements less per write): an
                    // error here is the database's and fails the whole transaction.
                    results[index] = .success(try writeNewVersion(of: write.profile, deleted: false, now: now))
                    continue
                }
                try run("SAVEPOINT one_write")
                do throws(StoreError) {
                    let current = try currentVersion(of: write.profile.speakerID) ?? 0
                    guard current == expected else {
                        throw StoreError(.conflict, "\(write.profile.speakerID) is at version \(current), not \(expected); read it again and retry")
                    }
                    results[index] = .success(try writeNewVersion(of: write.profile, deleted: false, now: now))
                    try run("RELEASE one_write")
                } catch {
                    try run("ROLLBACK TO one_write")
                    try run("RELEASE one_write")
                    results[index] = .failure(error)
                }
            }
        }
        return results.map { $0! }
    }

    private func check(_ profile: ProfileRecord) throws(ProfileRules.Violation) {
        try rules.checkSpeakerID(profile.speakerID)
        try rules.checkVector(profile.embedding, field: "embedding")
        try rules.checkSamples(profile.samples)
        try rules.checkThreshold(profile.threshold)
        try rules.checkMetadata(profile.metadata)
    }

    /// The live profile, or nil when there is none (or only a tombstone).
    public func get(_ speakerID: String) throws(StoreError) -> ProfileRecord? {
        let statement = try cached("""
            SELECT speaker_id, embedding, samples, threshold, metadata, version, origin, updated_at, deleted
            FROM profiles WHERE speaker_id = ?1 AND deleted = 0
            """)
        defer { statement.reset() }
        statement.bind(1, speakerID)
        guard try statement.step() else { return nil }
        return try record(from: statement)
    }

    /// Writes a tombstone over a live profile. Returns its version and whether a live profile
    /// existed; deleting what is not there writes nothing (version 0), so repeated or bogus
    /// deletes cannot grow the store or the outbox.
    public func delete(_ speakerID: String, now: Int64) throws(StoreError) -> (version: UInt64, existed: Bool) {
        try database.transaction { () throws(StoreError) -> (version: UInt64, existed: Bool) in
            guard let existing = try get(speakerID) else { return (0, false) }
            return (try writeNewVersion(of: existing, deleted: true, now: now).version, true)
        }
    }

    /// Live speaker ids starting with `prefix`, in byte order, after `after`, at most `limit`.
    public func list(prefix: String, after: String = "", limit: Int) throws(StoreError) -> [String] {
        let statement = try database.prepare("""
            SELECT speaker_id FROM profiles
            WHERE deleted = 0 AND speaker_id > ?1
              AND speaker_id >= ?2 AND speaker_id < ?2 || CAST(x'FF' AS TEXT)   -- the prefix as a key range
              AND substr(speaker_id, 1, length(?2)) = ?2
            ORDER BY speaker_id LIMIT ?3
            """)
        statement.bind(1, after)
        statement.bind(2, prefix)
        statement.bind(3, Int64(limit))
        var ids: [String] = []
        while try statement.step() { ids.append(statement.string(0)) }
        return ids
    }

    /// Every live profile, in storage order — the order in which speakers were first written
    /// (no sort: the cache worker's preload reads 100 000 rows in well under 100 ms this way
    /// and orders the few numbers it needs itself). The row is valid only inside `body`; its
    /// embedding is read in place, its record decoded only when asked for.
    ///
    /// The same scan starts the version clock, so it reads tombstones too (and skips them).
    public func forEachLive(_ body: (LiveRow) throws(StoreError) -> Void) throws(StoreError) {
        let statement = try database.prepare("""
            SELECT speaker_id, embedding, samples, threshold, metadata, version, origin, updated_at, deleted, last_access
            FROM profiles
            """)
        let row = LiveRow(store: self, statement: statement)
        var highest: UInt64 = 0
        while try statement.step() {
            highest = max(highest, UInt64(bitPattern: statement.int64(5)))
            if statement.int64(8) == 0 { try body(row) }
        }
        if clock == nil { clock = HybridLogicalClock(last: highest) }
    }

    /// One row of `forEachLive`.
    public struct LiveRow {
        fileprivate let store: ProfileStore
        fileprivate let statement: Statement

        public var speakerID: String { statement.string(0) }
        /// When the cache worker last served this speaker (unix ms; 0: never recorded).
        public var lastAccess: Int64 { statement.int64(9) }
        public var updatedAt: Int64 { statement.int64(7) }

        /// The embedding's floats, copied out of SQLite's (unaligned) blob into `scratch`;
        /// nil when the blob does not hold exactly one vector of the store's dimension.
        public func embedding(into scratch: UnsafeMutableBufferPointer<Float>) -> UnsafeBufferPointer<Float>? {
            statement.floats(1, into: scratch)
        }

        /// The record; without `embedding` its embedding is left empty, for a caller that
        /// reads it in place with `embedding(into:)`.
        public func record(embedding: Bool = true) throws(StoreError) -> ProfileRecord {
            try store.record(from: statement, embedding: embedding)
        }
    }

    /// Records when speakers were last served, for the preload after a restart. Advisory:
    /// no version, no outbox row; a time never moves back; unknown speakers are skipped.
    public func recordAccess(_ accesses: [(speakerID: String, at: Int64)]) throws(StoreError) {
        guard !accesses.isEmpty else { return }
        try database.transaction { () throws(StoreError) in
            let statement = try cached("UPDATE profiles SET last_access = ?2 WHERE speaker_id = ?1 AND last_access < ?2")
            for access in accesses {
                statement.reset()
                statement.bind(1, access.speakerID)
                statement.bind(2, access.at)
                _ = try statement.step()
            }
            statement.reset()
        }
    }

    /// When `speakerID` was last served, as recorded (0: never).
    public func lastAccess(of speakerID: String) throws(StoreError) -> Int64 {
        let statement = try cached("SELECT last_access FROM profiles WHERE speaker_id = ?1")
        defer { statement.reset() }
        statement.bind(1, speakerID)
        return try statement.step() ? statement.int64(0) : 0
    }

    /// Rows waiting in the outbox for the sync worker.
    public func outboxCount() throws(StoreError) -> Int {
        Int(try database.integer("SELECT count(*) FROM outbox"))
    }

    // MARK: Rows

    /// Stamps `profile` with the next version of this instance and writes it with its outbox
    /// row; call inside a transaction.
    ///
    /// A local write must come out newest, or last-writer-wins would undo it everywhere. The
    /// clock is almost always ahead of every stored version already (it started above them
    /// all, and ticks past the wall clock), so the write itself checks that the stored row is
    /// older — instead of a read of the stored version before every write, ~1.3 µs each, on
    /// the store's thread in every group commit. Only when the sync worker has applied a newer
    /// version from another instance since does the write change nothing; the clock then
    /// observes that version and the write goes again.
    private func writeNewVersion(of profile: ProfileRecord, deleted: Bool, now: Int64) throws(StoreError) -> ProfileRecord {
        var stored = profile
        if clock == nil {
            clock = HybridLogicalClock(last: UInt64(bitPattern: try database.integer("SELECT coalesce(max(version), 0) FROM profiles")))
        }
        stored.version = clock!.tick(wallMilliseconds: now)
        stored.origin = configuration.origin
        stored.updatedAt = now
        stored.deleted = deleted
        if try !write(stored) {
            guard let current = try storedVersion(of: profile.speakerID) else {
                throw StoreError(.io, "the write of '\(profile.speakerID)' to \(configuration.path) changed no row, and there is no row")
            }
            clock!.observe(current, wallMilliseconds: now)
            stored.version = clock!.tick(wallMilliseconds: now)
            guard try write(stored) else {
                throw StoreError(.io, "the write of '\(profile.speakerID)' to \(configuration.path) at version \(stored.version) changed no row; the stored one is \(current)")
            }
        }
        try enqueue(stored)
        return stored
    }

    /// The version of the speaker's row, tombstone or not.
    private func storedVersion(of speakerID: String) throws(StoreError) -> UInt64? {
        let statement = try cached("SELECT version FROM profiles WHERE speaker_id = ?1")
        defer { statement.reset() }
        statement.bind(1, speakerID)
        guard try statement.step() else { return nil }
        return UInt64(bitPattern: statement.int64(0))
    }

    private func currentVersion(of speakerID: String) throws(StoreError) -> UInt64? {
        let statement = try cached("SELECT version, deleted FROM profiles WHERE speaker_id = ?1")
        defer { statement.reset() }
        statement.bind(1, speakerID)
        guard try statement.step() else { return nil }
        return statement.int64(1) != 0 ? 0 : UInt64(bitPattern: statement.int64(0))
    }

    /// Inserts the row, or replaces the stored one if that is older; whether a row was written.
    private func write(_ profile: ProfileRecord) throws(StoreError) -> Bool {
        let statement = try cached("""
            INSERT INTO profiles (speaker_id, embedding, samples, threshold, metadata, version, origin, updated_at, deleted)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
            ON CONFLICT (speaker_id) DO UPDATE SET
                embedding = excluded.embedding, samples = excluded.samples, threshold = excluded.threshold,
                metadata = excluded.metadata, version = excluded.version, origin = excluded.origin,
                updated_at = excluded.updated_at, deleted = excluded.deleted
            WHERE profiles.version < excluded.version
            """)
        statement.bind(profile: profile)
        defer { statement.reset() }
        _ = try statement.step()
        return database.changes > 0
    }

    private func enqueue(_ profile: ProfileRecord) throws(StoreError) {
        let statement = try cached("INSERT INTO outbox (speaker_id, version, enqueued_at) VALUES (?1, ?2, ?3)")
        defer { statement.reset() }
        statement.bind(1, profile.speakerID)
        statement.bind(2, Int64(bitPattern: profile.version))
        statement.bind(3, profile.updatedAt)
        _ = try statement.step()
    }

    /// The prepared statement of a literal, ready to bind (reset by the caller after use, so
    /// that no finished statement keeps a read snapshot open), prepared on first use. Keyed by
    /// the literal's address, not its text: hashing the SQL on every call cost ~5 % of the
    /// store thread's time during enrolls (five statements per write).
    private func cached(_ sql: StaticString) throws(StoreError) -> Statement {
        let key = UnsafeRawPointer(sql.utf8Start)
        if let statement = statements[key] { return statement }
        let statement = try database.prepare(sql.description)
        statements[key] = statement
        return statement
    }

    /// Runs a cached statement that returns no rows (savepoints).
    private func run(_ sql: StaticString) throws(StoreError) {
        let statement = try cached(sql)
        defer { statement.reset() }
        _ = try statement.step()
    }

    /// A row as a record; rows whose vectors do not fit the store's dimension are reported as
    /// corrupt instead of being trusted. Without `embedding` the record's embedding is left
    /// empty (and unchecked: the caller reads and checks it itself).
    fileprivate func record(from statement: Statement, embedding withEmbedding: Bool = true) throws(StoreError) -> ProfileRecord {
        try Self.record(from: statement, configuration: configuration, embedding: withEmbedding)
    }

    /// Decodes the columns `speaker_id, embedding, samples, threshold, metadata, version,
    /// origin, updated_at, deleted` (in that order) of a profiles row (the sync worker's
    /// `SyncStore` reads rows with it too).
    static func record(from statement: Statement, configuration: StoreConfiguration, embedding withEmbedding: Bool = true) throws(StoreError) -> ProfileRecord {
        let dimension = configuration.dimension
        let id = statement.string(0)
        let embedding = withEmbedding ? statement.floats(1) : []
        let flat = statement.floats(2)
        let deleted = statement.int64(8) != 0
        guard (embedding.count == dimension || (deleted && embedding.isEmpty) || !withEmbedding), flat.count % dimension == 0 else {
            throw StoreError(.io, "corrupt row for '\(id)' in \(configuration.path): vectors of \(embedding.count) and \(flat.count) floats in a \(dimension)-dimensional store")
        }
        var record = ProfileRecord(
            speakerID: id, embedding: embedding,
            samples: stride(from: 0, to: flat.count, by: dimension).map { Array(flat[$0..<$0 + dimension]) },
            threshold: Float(statement.double(3)), metadata: statement.string(4))
        record.version = UInt64(bitPattern: statement.int64(5))
        record.origin = statement.string(6)
        record.updatedAt = statement.int64(7)
        record.deleted = statement.int64(8) != 0
        return record
    }
}

extension Statement {
    /// Binds a profile row's columns as ?1…?9: speaker_id, embedding, samples, threshold,
    /// metadata, version, origin, updated_at, deleted (the order of every profiles upsert).
    func bind(profile: ProfileRecord) {
        bind(1, profile.speakerID)
        bind(2, floats: profile.embedding)
        bind(3, floats: profile.samples.flatMap { $0 })
        bind(4, Double(profile.threshold))
        bind(5, profile.metadata)
        bind(6, Int64(bitPattern: profile.version))
        bind(7, profile.origin)
        bind(8, profile.updatedAt)
        bind(9, Int64(profile.deleted ? 1 : 0))
    }
}
