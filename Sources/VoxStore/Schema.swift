/// The local store's schema, versioned by `PRAGMA user_version`. Each migration runs once, in
/// its own transaction, in order; a store newer than this build is refused rather than guessed.
enum Schema {
    static let migrations: [String] = [
        // 1: profiles, the outbox that feeds the sync worker, dead letters, sync state, meta.
        """
        CREATE TABLE profiles (
            speaker_id   TEXT PRIMARY KEY NOT NULL,
            embedding    BLOB NOT NULL,               -- D little-endian float32
            samples      BLOB NOT NULL DEFAULT x'',   -- n × D float32, concatenated
            threshold    REAL NOT NULL DEFAULT 0,     -- 0: the store default
            metadata     TEXT NOT NULL DEFAULT '',
            version      INTEGER NOT NULL,            -- hybrid logical clock
            origin       TEXT NOT NULL,               -- instance that wrote this version
            updated_at   INTEGER NOT NULL,            -- unix ms
            deleted      INTEGER NOT NULL DEFAULT 0,  -- tombstone
            last_access  INTEGER NOT NULL DEFAULT 0   -- unix ms; reserved for most-recently-used preload
        ) WITHOUT ROWID;
        CREATE TABLE outbox (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            speaker_id   TEXT NOT NULL,
            version      INTEGER NOT NULL,
            enqueued_at  INTEGER NOT NULL,
            attempts     INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL DEFAULT 0,
            last_error   TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX outbox_speaker ON outbox(speaker_id);
        CREATE TABLE dead_letters (
            id           INTEGER PRIMARY KEY,
            speaker_id   TEXT NOT NULL,
            version      INTEGER NOT NULL,
            attempts     INTEGER NOT NULL,
            error        TEXT NOT NULL,
            failed_at    INTEGER NOT NULL
        );
        CREATE TABLE sync_state (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
        """,
        // 2: profiles in a rowid table with a unique index on the speaker id, instead of a
        // WITHOUT ROWID table keyed by it. A row is ~850 bytes (the embedding alone is 768),
        // so a WITHOUT ROWID leaf held about four, and SQLite rebalances a full index-b-tree
        // leaf among its siblings where it appends to a rowid table by adding a page: a
        // group commit of 32 new speakers took 65 pwrites before, 46 after (README, Enrolls).
        // The index, ~25 bytes an entry, takes one or two pages a commit. The outbox loses
        // AUTOINCREMENT (a sqlite_sequence update per write): its ids only order rows and
        // bound the deletes of the rows a push covered, and a reused id is only ever higher
        // than any row left.
        """
        CREATE TABLE profiles_new (
            speaker_id   TEXT NOT NULL UNIQUE,
            embedding    BLOB NOT NULL,
            samples      BLOB NOT NULL DEFAULT x'',
            threshold    REAL NOT NULL DEFAULT 0,
            metadata     TEXT NOT NULL DEFAULT '',
            version      INTEGER NOT NULL,
            origin       TEXT NOT NULL,
            updated_at   INTEGER NOT NULL,
            deleted      INTEGER NOT NULL DEFAULT 0,
            last_access  INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO profiles_new (speaker_id, embedding, samples, threshold, metadata, version, origin, updated_at, deleted, last_access)
            SELECT speaker_id, embedding, samples, threshold, metadata, version, origin, updated_at, deleted, last_access
            FROM profiles ORDER BY speaker_id;
        DROP TABLE profiles;
        ALTER TABLE profiles_new RENAME TO profiles;
        CREATE TABLE outbox_new (
            id           INTEGER PRIMARY KEY,
            speaker_id   TEXT NOT NULL,
            version      INTEGER NOT NULL,
            enqueued_at  INTEGER NOT NULL,
            attempts     INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL DEFAULT 0,
            last_error   TEXT NOT NULL DEFAULT ''
        );
        INSERT INTO outbox_new SELECT id, speaker_id, version, enqueued_at, attempts, next_attempt_at, last_error FROM outbox;
        DROP TABLE outbox;
        ALTER TABLE outbox_new RENAME TO outbox;
        CREATE INDEX outbox_speaker ON outbox(speaker_id);
        """,
    ]

    static var currentVersion: Int64 { Int64(migrations.count) }

    /// Brings `database` to the current schema (of `migrations`: the prefetch history has a
    /// file and a list of its own).
    /// The version is read inside each migration's write transaction, so two processes opening
    /// a new store at once (the cache and sync workers) never run a migration twice.
    static func migrate(_ database: SQLiteDatabase, migrations: [String] = Schema.migrations) throws(StoreError) {
        let currentVersion = Int64(migrations.count)
        while true {
            let done = try database.transaction { () throws(StoreError) -> Bool in
                let found = try database.integer("PRAGMA user_version")
                guard found <= currentVersion else {
                    throw StoreError(
                        .incompatible,
                        "the store \(database.path) has schema version \(found); this build knows up to \(currentVersion). Run a newer voxsync.")
                }
                guard found < currentVersion else { return true }
                try database.execute(migrations[Int(found)])
                try database.execute("PRAGMA user_version = \(found + 1)")
                return false
            }
            if done { return }
        }
    }
}
