/// When the sync worker refreshes its exported figures: at most once per `period`, however
/// often it cycles. The figures include the outbox's size, a scan of it; the worker cycles once
/// per nudge — one per group commit of the cache worker — and a scan per cycle of a long
/// outbox took both cores during enrolls. A cycle that skips the export waits at most until
/// the next one is due, so the figures are never staler than about one period.
///
/// Pure: the caller passes the clock's readings (any `InstantProtocol`), so tests need no
/// clock and no sleeps.
public struct ExportPacing<Instant: InstantProtocol>: Sendable where Instant: Sendable, Instant.Duration == Swift.Duration {
    public let period: Duration
    private var lastExport: Instant?

    public init(period: Duration = .seconds(1)) {
        precondition(period > .zero)
        self.period = period
    }

    /// After a cycle at `now` that would next wait `delay`: whether to export now, and how long
    /// to wait at most before the next cycle.
    public mutating func afterCycle(at now: Instant, delay: Duration) -> (export: Bool, wait: Duration) {
        if let lastExport {
            let since = lastExport.duration(to: now)
            if since >= .zero, since < period { return (false, min(delay, period - since)) }
        }
        lastExport = now
        return (true, delay)
    }
}
