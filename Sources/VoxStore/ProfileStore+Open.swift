import CSQLite
import VoxCore
#if canImport(Glibc)
import Glibc
#endif

/// Opening the store file: WAL, migrations, and the dimension and model it was made for.
extension ProfileStore {
    /// Opens the store file in WAL mode, migrates it, and checks that it was created for these
    /// embeddings. The cache worker's `ProfileStore` and the sync worker's `SyncStore` both open
    /// the file this way.
    static func open(_ configuration: StoreConfiguration) throws(StoreError) -> SQLiteDatabase {
        let database = try SQLiteDatabase(path: configuration.path)
        try database.execute("PRAGMA busy_timeout = 5000")
        try enableWAL(database)
        try database.execute("PRAGMA synchronous = \(configuration.synchronousFull ? "FULL" : "NORMAL")")
        // A migration rewrites whole tables in one transaction (schema 2 took 2.5 s for 100 000
        // profiles here): the worker that did not win it waits for it, not 5 s.
        try database.execute("PRAGMA busy_timeout = 120000")
        try Schema.migrate(database)
        try database.execute("PRAGMA busy_timeout = 5000")
        try checkMeta(database, configuration)
        return database
    }

    /// Switches a new store to WAL. Two workers opening a new store at the same moment race
    /// for the switch, and SQLite answers the loser SQLITE_BUSY at once (a journal-mode change
    /// does not wait in the busy handler): so the loser retries, for up to 5 s.
    static func enableWAL(_ database: SQLiteDatabase) throws(StoreError) {
        var attempts = 0
        while true {
            do {
                try database.execute("PRAGMA journal_mode = WAL")
                return
            } catch {
                attempts += 1
                guard attempts < 250 else { throw error }
                usleep(20_000)
            }
        }
    }

    /// The dimension and model are fixed when the store is created; a mismatch is refused.
    static func checkMeta(_ database: SQLiteDatabase, _ configuration: StoreConfiguration) throws(StoreError) {
        let read = try database.prepare("SELECT value FROM meta WHERE key = ?1")
        func value(_ key: String) throws(StoreError) -> String? {
            read.reset()
            read.bind(1, key)
            return try read.step() ? read.string(0) : nil
        }
        if let dimension = try value("embedding_dimension"), let model = try value("embedding_model") {
            guard dimension == String(configuration.dimension) else {
                throw StoreError(.incompatible, "the store \(configuration.path) holds \(dimension)-dimensional embeddings, not \(configuration.dimension); set embedding_dimension=\(dimension) or use another data directory")
            }
            guard model == configuration.model else {
                throw StoreError(.incompatible, "the store \(configuration.path) holds embeddings of model '\(model)', not '\(configuration.model)'")
            }
            return
        }
        try database.transaction { () throws(StoreError) in
            let insert = try database.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
            for (key, value) in [("embedding_dimension", String(configuration.dimension)), ("embedding_model", configuration.model)] {
                insert.reset()
                insert.bind(1, key)
                insert.bind(2, value)
                _ = try insert.step()
            }
        }
    }
}
