import NIOCore
import NIOPosix
import VoxStore

/// The store's thread: the only thread that uses the SQLite store, and the one that applies
/// what the store did to the state (see `CacheService`'s documentation).
extension CacheService {
    /// Runs `body` on the store's thread; the future completes on `loop`. What the store did
    /// is applied to the state inside `body` (under the lock), not in a callback of the future:
    /// that keeps the state's updates in the store's order (see the type's documentation).
    func onStore<T: Sendable>(_ body: @escaping @Sendable (ProfileStore) throws -> T) -> EventLoopFuture<T> {
        let store = UncheckedStore(store: store)
        return storeThread.runIfActive(eventLoop: loop) { try body(store.store) }
    }

    /// Runs `body` on the store's thread and hands its outcome to `then` on the same thread.
    /// If the thread has stopped, or stops before it gets to `body`, `then` gets
    /// `StoreThreadStopped` instead — on the caller's thread (which must not hold the lock) or
    /// on a Dispatch thread, possibly while the store's thread finishes its current job; it
    /// must then change nothing but answer.
    func onStore<T>(_ body: @escaping @Sendable (ProfileStore) throws -> T, then: @escaping @Sendable (Result<T, Error>) -> Void) {
        let store = UncheckedStore(store: store)
        storeThread.submit { state in
            guard case .active = state else { return then(.failure(StoreThreadStopped())) }
            then(Result { try body(store.store) })
        }
    }
}

/// The store's thread has stopped (the worker shuts down): the work was not done.
struct StoreThreadStopped: Error {}

/// The store crosses to its thread inside this box. Sound because only `storeThread`'s single
/// thread ever uses it after `CacheService.init`.
private struct UncheckedStore: @unchecked Sendable {
    let store: ProfileStore
}
