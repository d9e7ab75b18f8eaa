import CSQLite

/// One SQLite connection. Not thread-safe: it belongs to the one thread (or serial executor)
/// that does the store's I/O.
public final class SQLiteDatabase {
    let handle: OpaquePointer
    public let path: String

    public init(path: String) throws(StoreError) {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let result = sqlite3_open_v2(path, &handle, flags, nil)
        guard result == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            throw StoreError(.io, "cannot open the store \(path): \(message)")
        }
        self.handle = handle
        self.path = path
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws(StoreError) {
        var error: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(handle, sql, nil, nil, &error) == SQLITE_OK else {
            let message = error.map { String(cString: $0) } ?? lastError
            sqlite3_free(error)
            throw StoreError(.io, "\(message) (in: \(sql.prefix(80)))")
        }
    }

    public func prepare(_ sql: String) throws(StoreError) -> Statement {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
            throw StoreError(.io, "\(lastError) (in: \(sql.prefix(80)))")
        }
        return Statement(statement: statement, database: self)
    }

    /// Runs `body` in one transaction: committed if it returns, rolled back if it throws.
    public func transaction<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    var lastError: String { String(cString: sqlite3_errmsg(handle)) }

    /// A single integer result (`PRAGMA user_version`, `SELECT count(*)`).
    public func integer(_ sql: String) throws(StoreError) -> Int64 {
        let statement = try prepare(sql)
        guard try statement.step() else { throw StoreError(.io, "no row from: \(sql)") }
        return statement.int64(0)
    }
}

/// A prepared statement. Bind parameters (1-based), step, read columns (0-based), reset.
public final class Statement {
    private let statement: OpaquePointer
    private let database: SQLiteDatabase

    init(statement: OpaquePointer, database: SQLiteDatabase) {
        self.statement = statement
        self.database = database
    }

    deinit { sqlite3_finalize(statement) }

    public func reset() {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    public func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(statement, index, value) }
    public func bind(_ index: Int32, _ value: Double) { sqlite3_bind_double(statement, index, value) }
    /// Binds text by its byte length, so a NUL inside it is kept.
    public func bind(_ index: Int32, _ value: String) {
        guard !value.isEmpty else {
            sqlite3_bind_text(statement, index, "", 0, voxsync_sqlite_transient())
            return
        }
        var value = value
        value.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                _ = sqlite3_bind_text(statement, index, chars.baseAddress!, Int32(chars.count), voxsync_sqlite_transient())
            }
        }
    }
    public func bind(_ index: Int32, floats: [Float]) {
        guard !floats.isEmpty else {
            sqlite3_bind_zeroblob(statement, index, 0)  // an empty blob, not NULL
            return
        }
        floats.withUnsafeBytes { bytes in
            _ = sqlite3_bind_blob(statement, index, bytes.baseAddress, Int32(bytes.count), voxsync_sqlite_transient())
        }
    }

    /// Advances to the next row; false when there is none.
    public func step() throws(StoreError) -> Bool {
        switch sqlite3_step(statement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw StoreError(.io, database.lastError)
        }
    }

    public func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }
    public func double(_ column: Int32) -> Double { sqlite3_column_double(statement, column) }
    public func string(_ column: Int32) -> String {
        guard let text = sqlite3_column_text(statement, column) else { return "" }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }
    /// The column's floats copied into `scratch`, when the blob holds exactly `scratch.count`
    /// of them; nil otherwise. No allocation: for reading many rows in a row.
    public func floats(_ column: Int32, into scratch: UnsafeMutableBufferPointer<Float>) -> UnsafeBufferPointer<Float>? {
        let bytes = Int(sqlite3_column_bytes(statement, column))
        guard bytes == scratch.count * MemoryLayout<Float>.size, bytes > 0, let blob = sqlite3_column_blob(statement, column) else { return nil }
        UnsafeMutableRawBufferPointer(scratch).copyMemory(from: UnsafeRawBufferPointer(start: blob, count: bytes))
        return UnsafeBufferPointer(scratch)
    }

    public func floats(_ column: Int32) -> [Float] {
        let count = Int(sqlite3_column_bytes(statement, column)) / MemoryLayout<Float>.size
        guard count > 0, let blob = sqlite3_column_blob(statement, column) else { return [] }
        // SQLite does not promise alignment for blobs: copy bytes rather than bind the memory.
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(start: blob, count: count * MemoryLayout<Float>.size))
            initialized = count
        }
    }
}
