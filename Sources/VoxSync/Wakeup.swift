import NIOCore

/// Wakes the sync loop early: a nudge from the cache worker, a requeued dead letter, shutdown.
/// Signals that arrive while nobody waits are remembered (once), so none is lost between two
/// waits.
///
/// `@unchecked Sendable`: the state is touched only on `loop`.
public final class Wakeup: @unchecked Sendable {
    private let loop: EventLoop
    private var pending = false
    private var waiter: EventLoopPromise<Void>?

    public init(loop: EventLoop) {
        self.loop = loop
    }

    public func signal() {
        loop.execute {
            if let waiter = self.waiter {
                self.waiter = nil
                waiter.succeed()
            } else {
                self.pending = true
            }
        }
    }

    /// Returns at the next signal, or after `timeout`.
    public func wait(upTo timeout: Duration) async {
        let nanoseconds = Int64(min(timeout.seconds, 3600) * 1e9)
        let future = loop.flatSubmit { () -> EventLoopFuture<Void> in
            if self.pending {
                self.pending = false
                return self.loop.makeSucceededVoidFuture()
            }
            let promise = self.loop.makePromise(of: Void.self)
            self.waiter = promise
            let timer = self.loop.scheduleTask(in: .nanoseconds(nanoseconds)) {
                if self.waiter?.futureResult === promise.futureResult {
                    self.waiter = nil
                    promise.succeed()
                }
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
            return promise.futureResult
        }
        try? await future.get()
    }
}
