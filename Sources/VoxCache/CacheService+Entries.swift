import CoreMetrics
import NIOCore
import VoxCore
import VoxStore
import VoxWire

/// The cache itself: lookups counted as hits or misses, admission and SIEVE eviction, the
/// prefetch ledger's outcomes, and the verify verdict. Everything here runs under the
/// service's lock (see `CacheService`).
extension CacheService {
    /// The cached profile of `speakerID`, counted as a hit or a miss and noted as accessed.
    /// Under the lock.
    func lookup(_ speakerID: String) -> CachedProfile? {
        accessed.record(speakerID)
        guard policy.access(speakerID), let cached = cache[speakerID] else {
            misses += 1
            metrics.misses.increment()
            onAccess?(speakerID, false)
            return nil
        }
        hits += 1
        metrics.hits.increment()
        if prefetched.read(speakerID) { notePrefetchOutcome(used: true) }
        onAccess?(speakerID, true)
        return cached
    }

    /// Turns of the hand a prefetched entry survives unread: it is loaded up to a window
    /// (minutes) before its read, and a new unread entry is otherwise the hand's next victim.
    /// The one the prefetch replay uses (`voxsync-bench prefetch`), so that its figures are
    /// this cache's.
    static var prefetchTurns: UInt8 { SieveCachePolicy<String>.prefetchTurns }

    /// Counts a prefetched entry's fate in the metrics (read first: used; evicted unread:
    /// wasted) and updates the precision gauge. Under the lock.
    func notePrefetchOutcome(used: Bool) {
        (used ? metrics.prefetchUsed : metrics.prefetchWasted).increment()
        guard let precision = prefetched.precision else { return }
        let gauge = precisionGauge ?? CacheMetrics.prefetchPrecision()
        precisionGauge = gauge
        gauge.record(precision)
    }

    /// Puts a live record read from or just written to the store into the matrix and the
    /// cache (evicting by SIEVE when full). Under the lock.
    /// `turns`: how many turns of SIEVE's hand the entry survives unread (0 for a miss, as
    /// SIEVE admits; `prefetchTurns` for a prefetched entry).
    @discardableResult
    func admit(_ record: ProfileRecord, turns: UInt8 = 0) -> CachedProfile {
        matrix.upsert(record.speakerID, embedding: record.embedding)
        let cached = CachedProfile(record)
        enter(cached, turns: turns)
        metrics.size.record(cache.count)
        return cached
    }

    /// Puts an entry into the cache (its embedding is in the matrix already). Under the lock.
    func enter(_ cached: CachedProfile, turns: UInt8) {
        if let evicted = policy.insert(cached.speakerID, turns: turns) {
            cache[evicted] = nil
            if prefetched.evicted(evicted) { notePrefetchOutcome(used: false) }
        }
        cache[cached.speakerID] = cached
    }

    /// The verify answer; nil if the matrix has no embedding for the speaker (it always has
    /// one for a cached profile, but a miss is the safe answer should that ever break).
    /// Under the lock.
    func verdict(_ cached: CachedProfile, probe: [Float], source: Voxsync_V1_Source) -> Envelope.OneOf_Message? {
        guard let cosine = matrix.cosine(of: cached.speakerID, unitProbe: probe) else { return nil }
        var answer = Voxsync_V1_VerifyResponse()
        answer.score = cached.score(unitProbe: probe, embeddingCosine: cosine)
        answer.threshold = cached.threshold == 0 ? defaultThreshold : cached.threshold
        answer.accepted = answer.score >= answer.threshold
        answer.source = source
        return .verifyOk(answer)
    }
}
