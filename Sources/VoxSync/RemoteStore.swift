import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import VoxCore
import VoxStore

/// Profiles in PostgreSQL: the table every voxsync instance pushes to and pulls from.
///
/// Schema (created and migrated idempotently at start, under an advisory lock so that two
/// instances starting together do not race):
///
/// ```sql
/// voxsync_profiles (speaker_id text COLLATE "C" PRIMARY KEY, embedding bytea, samples bytea,
///                   threshold real, metadata text, version bigint, origin text COLLATE "C",
///                   updated_at bigint, deleted boolean, dimension integer, changed_by bigint,
///                   model text)   -- the writer's embedding_model; schema 2 added it
/// ```
///
/// Vectors are little-endian float32, as in the local store. `changed_by` is the id of the
/// transaction that last wrote the row, stamped by a trigger (so any writer, including a person
/// with psql, keeps the change feed right); see `PullCursor` for why that makes the pull exact.
/// Text compares in byte order (`COLLATE "C"`), like SQLite and Swift, so the last-writer-wins
/// tie-break on `origin` is the same everywhere.
public final class RemoteStore: Sendable {
    public static let table = "voxsync_profiles"

    public let url: PostgresURL
    public let poolSize: Int
    private let client: PostgresClient
    private let logger: Logger
    private let busy = NIOLockedValueBox(0)

    public init(url: PostgresURL, poolSize: Int, statementTimeout: Duration? = nil, logger: Logger) {
        self.url = url
        self.poolSize = poolSize
        self.logger = logger
        client = PostgresClient(
            configuration: Self.clientConfiguration(url: url, poolSize: poolSize, statementTimeout: statementTimeout), backgroundLogger: logger)
    }

    /// The postgres-nio pool configuration for `url`. With `statementTimeout` the server stops
    /// any statement (or lock wait) of these connections that runs longer.
    public static func clientConfiguration(url: PostgresURL, poolSize: Int, statementTimeout: Duration? = nil) -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        let tls: PostgresClient.Configuration.TLS
        switch url.tls {
        case .disable: tls = .disable
        case .prefer:
            var context = TLSConfiguration.makeClientConfiguration()
            context.certificateVerification = .none
            tls = .prefer(context)
        case .require:
            var context = TLSConfiguration.makeClientConfiguration()
            context.certificateVerification = .none
            tls = .require(context)
        case .verifyFull:
            tls = .require(.makeClientConfiguration())
        }
        switch url.endpoint {
        case .tcp(let host, let port):
            configuration = .init(host: host, port: port, username: url.user, password: url.password, database: url.database, tls: tls)
        case .unixSocket(let path):
            configuration = .init(unixSocketPath: path, username: url.user, password: url.password, database: url.database)
        }
        configuration.options.maximumConnections = poolSize
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = .seconds(3)
        configuration.options.additionalStartupParameters = [("application_name", url.applicationName)]
        if let statementTimeout {
            let milliseconds = String(Int(statementTimeout.seconds * 1000))
            configuration.options.additionalStartupParameters += [("statement_timeout", milliseconds), ("lock_timeout", milliseconds)]
        }
        return configuration
    }

    /// Runs the connection pool until the surrounding task is cancelled.
    public func run() async {
        await client.run()
    }

    /// Connections busy / pool size.
    public var load: Double {
        Double(busy.withLockedValue { $0 }) / Double(poolSize)
    }

    // MARK: Schema

    /// Creates or upgrades the remote schema. The version lives in the table's comment, read
    /// from the catalog without taking a lock on the table: a schema already in place costs one
    /// catalog query and never waits behind (or blocks) other instances' writes. Only when the
    /// DDL must run does it take an advisory lock, so two instances never run it at once.
    public func migrate(timeout: Duration) async throws {
        try await withDeadline(timeout) {
            guard try await self.schemaVersion() != Self.schemaTag else { return }
            try await self.client.withTransaction(logger: self.logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(7238467011)", logger: self.logger)
                for statement in Self.schema {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                try await connection.query(PostgresQuery(unsafeSQL: "COMMENT ON TABLE \(Self.table) IS '\(Self.schemaTag)'"), logger: self.logger)
            }
        }
    }

    static let schemaTag = "voxsync schema 2"

    private func schemaVersion() async throws -> String {
        let rows = try await client.query(
            "SELECT coalesce(obj_description(to_regclass('voxsync_profiles'), 'pg_class'), '')", logger: logger)
        for try await comment in rows.decode(String.self) { return comment }
        return ""
    }

    static let schema: [String] = [
        """
        CREATE TABLE IF NOT EXISTS \(table) (
            speaker_id  text COLLATE "C" PRIMARY KEY,
            embedding   bytea NOT NULL,
            samples     bytea NOT NULL,
            threshold   real NOT NULL,
            metadata    text NOT NULL,
            version     bigint NOT NULL,
            origin      text COLLATE "C" NOT NULL,
            updated_at  bigint NOT NULL,
            deleted     boolean NOT NULL,
            dimension   integer NOT NULL,
            changed_by  bigint NOT NULL DEFAULT 0
        )
        """,
        // Schema 2: the model tag of the writer's store. Rows written before it (and by older
        // builds, which only knew this model) get the default.
        "ALTER TABLE \(table) ADD COLUMN IF NOT EXISTS model text COLLATE \"C\" NOT NULL DEFAULT 'ecapa-tdnn-192'",
        "CREATE INDEX IF NOT EXISTS \(table)_changed ON \(table) (changed_by, speaker_id)",
        """
        CREATE OR REPLACE FUNCTION \(table)_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.changed_by := pg_current_xact_id()::text::bigint;
            RETURN NEW;
        END $$
        """,
        "DROP TRIGGER IF EXISTS \(table)_stamp ON \(table)",
        "CREATE TRIGGER \(table)_stamp BEFORE INSERT OR UPDATE ON \(table) FOR EACH ROW EXECUTE FUNCTION \(table)_stamp()",
    ]

    // MARK: Push

    /// Upserts `records` in one statement (one round trip). A row only replaces a remote row
    /// with a smaller `(version, origin)`, so a late or repeated batch never overwrites newer
    /// data. Speaker ids must be distinct (the outbox planner coalesces them).
    public func upsert(_ records: [ProfileRecord], dimension: Int, model: String, timeout: Duration) async throws {
        guard !records.isEmpty else { return }
        var ids: [String] = [], embeddings: [ByteBuffer] = [], samples: [ByteBuffer] = [], thresholds: [Float] = []
        var metadata: [String] = [], versions: [Int64] = [], origins: [String] = [], updated: [Int64] = [], deleted: [Bool] = []
        for record in records {
            ids.append(record.speakerID)
            embeddings.append(Self.buffer(record.embedding))
            samples.append(Self.buffer(record.samples.flatMap { $0 }))
            thresholds.append(record.threshold)
            metadata.append(record.metadata)
            versions.append(Int64(bitPattern: record.version))
            origins.append(record.origin)
            updated.append(record.updatedAt)
            deleted.append(record.deleted)
        }
        let dimension = Int32(dimension)
        let query: PostgresQuery = """
            INSERT INTO voxsync_profiles AS p
                (speaker_id, embedding, samples, threshold, metadata, version, origin, updated_at, deleted, dimension, model)
            SELECT u.*, \(dimension)::integer, \(model)::text FROM UNNEST(
                \(ids)::text[], \(embeddings)::bytea[], \(samples)::bytea[], \(thresholds)::real[], \(metadata)::text[],
                \(versions)::bigint[], \(origins)::text[], \(updated)::bigint[], \(deleted)::boolean[]) AS u
            ON CONFLICT (speaker_id) DO UPDATE SET
                embedding = excluded.embedding, samples = excluded.samples, threshold = excluded.threshold,
                metadata = excluded.metadata, version = excluded.version, origin = excluded.origin,
                updated_at = excluded.updated_at, deleted = excluded.deleted, dimension = excluded.dimension,
                model = excluded.model
            WHERE (excluded.version, excluded.origin) > (p.version, p.origin)
            """
        try await withDeadline(timeout) {
            try await self.busy {
                // Read to the end: the command's completion is what releases the connection.
                for try await _ in try await self.client.query(query, logger: self.logger) {}
            }
        }
    }

    // MARK: Pull

    /// A remote row as read, not yet validated.
    public struct PulledRow: Sendable {
        public var record: ProfileRecord
        public var dimension: Int
        /// The writer's model tag.
        public var model: String
        public var changedBy: Int64
    }

    /// The transaction horizon: every transaction with a smaller id has ended.
    public func horizon(timeout: Duration) async throws -> Int64 {
        try await withDeadline(timeout) {
            try await self.busy {
                let rows = try await self.client.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint", logger: self.logger)
                for try await horizon in rows.decode(Int64.self) { return horizon }
                throw SyncError("PostgreSQL returned no snapshot horizon")
            }
        }
    }

    /// One page of rows written by other instances in the cursor's window.
    public func pull(_ page: PullCursor.Page, excludingOrigin origin: String, limit: Int, timeout: Duration) async throws -> [PulledRow] {
        let afterTransaction = page.after?.transaction ?? -1
        let afterSpeaker = page.after?.speakerID ?? ""
        let query: PostgresQuery = """
            SELECT speaker_id, embedding, samples, threshold, metadata, version, origin, updated_at, deleted, dimension, model, changed_by
            FROM voxsync_profiles
            WHERE changed_by >= \(page.from) AND changed_by < \(page.below)
              AND (changed_by, speaker_id) > (\(afterTransaction), \(afterSpeaker))
              AND origin <> \(origin)
            ORDER BY changed_by, speaker_id
            LIMIT \(limit)
            """
        return try await withDeadline(timeout) {
            try await self.busy {
                var rows: [PulledRow] = []
                let sequence = try await self.client.query(query, logger: self.logger)
                for try await (id, embedding, samples, threshold, metadata, version, origin, updated, deleted, dimension, model, changedBy)
                    in sequence.decode((String, ByteBuffer, ByteBuffer, Float, String, Int64, String, Int64, Bool, Int32, String, Int64).self) {
                    var record = ProfileRecord(speakerID: id, embedding: Self.floats(embedding), threshold: threshold, metadata: metadata)
                    let flat = Self.floats(samples)
                    let d = max(Int(dimension), 1)
                    record.samples = flat.count % d == 0 ? stride(from: 0, to: flat.count, by: d).map { Array(flat[$0..<$0 + d]) } : [flat]
                    record.version = UInt64(bitPattern: version)
                    record.origin = origin
                    record.updatedAt = updated
                    record.deleted = deleted
                    rows.append(PulledRow(record: record, dimension: Int(dimension), model: model, changedBy: changedBy))
                }
                return rows
            }
        }
    }

    /// Every remote row, ordered by speaker id (tests and benchmarks compare tables with it).
    public func allRows(timeout: Duration) async throws -> [PulledRow] {
        try await pull(.init(from: 0, below: .max, after: nil), excludingOrigin: "", limit: Int(Int32.max), timeout: timeout)
            .sorted { $0.record.speakerID.utf8.lexicographicallyPrecedes($1.record.speakerID.utf8) }
    }

    // MARK: Helpers

    /// Counts the call as a busy connection while it runs (the pool-load gauge).
    private func busy<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        busy.withLockedValue { $0 += 1 }
        defer { busy.withLockedValue { $0 -= 1 } }
        return try await body()
    }

    /// Little-endian float32 bytes, as vectors are stored (bytea) remotely and locally.
    public static func buffer(_ floats: [Float]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(floats.count * 4)
        for value in floats { buffer.writeInteger(value.bitPattern, endianness: .little) }
        return buffer
    }

    static func floats(_ buffer: ByteBuffer) -> [Float] {
        var buffer = buffer
        var floats: [Float] = []
        floats.reserveCapacity(buffer.readableBytes / 4)
        while let bits = buffer.readInteger(endianness: .little, as: UInt32.self) { floats.append(Float(bitPattern: bits)) }
        if buffer.readableBytes > 0 { floats.append(.nan) }  // a torn vector: validation refuses the row
        return floats
    }
}

/// A failure of the sync worker's own making (no SQLSTATE), with a message a person can act on.
public struct SyncError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Thrown when a remote call outlives its deadline.
public struct SyncTimeout: Error, Sendable, CustomStringConvertible {
    public var after: Duration
    public var description: String { "PostgreSQL did not answer within \(after.seconds) s" }
}

/// Runs `body`; throws `SyncTimeout` when it takes longer than `timeout`, without waiting for
/// it: a postgres-nio query does not end when its task is cancelled, so the caller is released
/// here and the query ends on its own (the server's `statement_timeout`, set to the same
/// deadline, stops it there).
func withDeadline<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let settled = NIOLockedValueBox(false)
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
        let work = Task {
            let result: Result<T, Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            if settled.withLockedValue({ done in defer { done = true }; return !done }) { continuation.resume(with: result) }
        }
        Task {
            try? await Task.sleep(for: timeout)
            if settled.withLockedValue({ done in defer { done = true }; return !done }) {
                work.cancel()
                continuation.resume(throwing: SyncTimeout(after: timeout))
            }
        }
    }
}

extension Error {
    /// The SQLSTATE of a PostgreSQL error, if the server sent one.
    var sqlState: String? {
        (self as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// A one-line description that is safe to log: PostgreSQL's message and code. Never the
    /// query's values: the server's DETAIL quotes the failing row, embeddings included, and a
    /// voice print does not belong in a log (postgres-nio's own description hides everything).
    var syncDescription: String {
        if let error = self as? PSQLError {
            if let info = error.serverInfo {
                let message = info[.message] ?? "error"
                return "PostgreSQL: \(message) [SQLSTATE \(info[.sqlState] ?? "?")]"
            }
            return "PostgreSQL connection: \(error.code)"
        }
        return "\(self)"
    }
}
