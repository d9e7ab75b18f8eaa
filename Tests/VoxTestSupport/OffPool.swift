import Foundation

/// Runs CPU-heavy test work (a replay in a debug build takes seconds) on a thread of its own.
/// On two cores Swift's cooperative pool has two threads; holding them starves the
/// timing-sensitive transport tests that run beside these (a 5 s request timeout fired in CI).
/// Assertions stay in the test: `body` only computes.
public func offCooperativePool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}
