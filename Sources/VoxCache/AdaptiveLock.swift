import CVoxSys

#if canImport(Glibc)
import Glibc
#endif

/// The cache service's state lock: a glibc adaptive mutex, which spins briefly before it
/// sleeps (in debug builds an error-checking one, so that a nested `locked` traps, as it did
/// with `NIOLock`). Both event loops take it for every request, for a microsecond or two;
/// with `NIOLock` (a plain mutex) a loop that found it taken slept in `futex(2)` and had to be
/// woken: `perf` of the cache worker at 50 verify clients put ~10 % of its samples in those
/// futex waits and wakes, and 0.6 % with this lock. (End to end the gain was within this VM's
/// noise: 18.1 against 18.9 µs of cache-worker CPU per verify over five alternated runs.)
final class AdaptiveLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        #if DEBUG
        let result = voxsync_mutex_init(mutex, 1)  // error-checking: a nested lock traps in tests
        #else
        let result = voxsync_mutex_init(mutex, 0)
        #endif
        precondition(result == 0, "pthread_mutex_init failed: \(result)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    func lock() {
        let result = pthread_mutex_lock(mutex)
        precondition(result == 0, "pthread_mutex_lock failed: \(result)")
    }

    @inline(__always)
    func unlock() {
        let result = pthread_mutex_unlock(mutex)
        precondition(result == 0, "pthread_mutex_unlock failed: \(result)")
    }
}
