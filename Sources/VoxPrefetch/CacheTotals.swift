/// The cache's prefetch totals (entries read, entries evicted unread), as each answer to a
/// prefetch list carries them, turned into what changed since the previous answer — what the
/// adaptive threshold is fed.
///
/// The cache counts from its own start, so a total below the last one means the cache worker
/// restarted and all of the new total is news. The first answer a (re)started prefetch worker
/// sees only sets the baseline: its totals were the previous prefetch worker's news.
public struct CacheTotals: Sendable, Equatable {
    public private(set) var used: UInt64 = 0
    public private(set) var wasted: UInt64 = 0
    private var answered = false

    public init() {}

    /// Precision of the totals last seen: used / (used + wasted); nil before anything is decided.
    public var precision: Double? {
        used + wasted == 0 ? nil : Double(used) / Double(used + wasted)
    }

    /// Takes the totals of one answer; returns the change since the last one (nil for the first).
    public mutating func update(used: UInt64, wasted: UInt64) -> (used: UInt64, wasted: UInt64)? {
        defer { (self.used, self.wasted, answered) = (used, wasted, true) }
        guard answered else { return nil }
        return (used >= self.used ? used - self.used : used, wasted >= self.wasted ? wasted - self.wasted : wasted)
    }
}
