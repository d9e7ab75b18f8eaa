import NIOPosix
import VoxStore

/// The prefetch history file on a thread of its own: SQLite blocks, and neither the socket's
/// event loop nor the cooperative pool may wait for a disk.
///
/// `@unchecked Sendable`: the store is opened on the pool's single thread and only ever used
/// there (every call goes through `run`).
final class PrefetchHistoryThread: @unchecked Sendable {
    private let pool: NIOThreadPool
    private var store: PrefetchHistoryStore?

    private init(pool: NIOThreadPool) {
        self.pool = pool
    }

    /// Starts the thread and opens (or creates) the file there.
    static func open(path: String) async throws -> PrefetchHistoryThread {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let thread = PrefetchHistoryThread(pool: pool)
        do {
            try await pool.runIfActive { thread.store = try PrefetchHistoryStore(path: path) }
        } catch {
            try? await pool.shutdownGracefully()
            throw error
        }
        return thread
    }

    /// Runs `body` with the store on its thread.
    func run<T: Sendable>(_ body: @escaping @Sendable (PrefetchHistoryStore) throws -> T) async throws -> T {
        try await pool.runIfActive {
            guard let store = self.store else { throw StoreError(.io, "the prefetch history is closed") }
            return try body(store)
        }
    }

    /// Closes the file and stops the thread.
    func close() async {
        _ = try? await pool.runIfActive { self.store = nil }
        try? await pool.shutdownGracefully()
    }
}
