/// Which reads the cache worker reports to the prefetch worker: at most one access event per
/// speaker per `gapMilliseconds`.
///
/// The prefetcher treats reads of a speaker less than a second apart as one read
/// (`PrefetchPredictor.sameReadMilliseconds` in VoxPrefetch); sending them anyway would cost
/// an event's encoding, a share of a message and the prefetch worker's decoding per read —
/// about 5 µs of CPU per verify at 50 000 verifies a second, a quarter of what the verify
/// itself costs. The first read of a window is sent, with its hit or miss; a miss later in the
/// same second is not reported (rare: a miss loads the profile).
///
/// A pure value: the caller passes the time. Memory: the speakers sent within the last gap,
/// and at most as many again — whenever the map has doubled since its last prune, expired
/// windows are dropped (amortised O(1) per read, never a long stall on a timer).
public struct AccessEventThrottle: Sendable {
    public let gapMilliseconds: Int64
    private var lastSent: [String: Int64] = [:]
    private var pruneAt = 1024

    public init(gapMilliseconds: Int64 = 1000) {
        precondition(gapMilliseconds > 0)
        self.gapMilliseconds = gapMilliseconds
    }

    /// Speakers remembered right now.
    public var count: Int { lastSent.count }

    /// Whether a read of `speaker` at `now` (unix ms) becomes an access event. A clock that
    /// went back sends (and restarts the window) rather than silencing the speaker.
    public mutating func shouldSend(_ speaker: String, at now: Int64) -> Bool {
        if let last = lastSent[speaker], now >= last, now - last < gapMilliseconds { return false }
        lastSent[speaker] = now
        if lastSent.count >= pruneAt {
            prune(now: now)
            pruneAt = max(1024, 2 * lastSent.count)
        }
        return true
    }

    /// Forgets the speakers whose window has passed at `now` (or lies in the future).
    public mutating func prune(now: Int64) {
        guard !lastSent.isEmpty else { return }
        lastSent = lastSent.filter { now >= $0.value && now - $0.value < gapMilliseconds }
    }
}
