import NIOCore
import VoxCore
import VoxStore
import VoxTransport
import VoxWire

extension CacheService {
    /// What a preload builds: at start (in the background for the worker, see `init`) and
    /// after an `Invalidate{all}`.
    struct Preloaded {
        var matrix: EmbeddingMatrix
        var cache: [String: CachedProfile]
        var policy: SieveCachePolicy<String>
        /// The scan (SQLite, the matrix, the records) and the admission into the cache.
        var scanTime: Duration
        var admitTime: Duration
    }

    /// One pass over the live rows in storage order: every embedding goes straight from
    /// SQLite's blob into the matrix (no array per row); the records are decoded, and the most
    /// recently used up to `cacheCapacity` (`PreloadOrder`) are admitted, coldest first. When the store
    /// holds more profiles than the cache, the records beyond capacity are decoded and dropped
    /// again — a passing cost at start, and none when everything fits, as by default.
    static func preload(_ store: ProfileStore, cacheCapacity: Int) throws -> Preloaded {
        let started = ContinuousClock.now
        let dimension = store.configuration.dimension
        var matrix = EmbeddingMatrix(dimension: dimension)
        let bound = try store.profileCountBound()
        matrix.reserveCapacity(bound)
        var profiles: [CachedProfile] = []
        var candidates: [PreloadOrder.Candidate] = []
        profiles.reserveCapacity(bound)
        candidates.reserveCapacity(bound)
        // Every row names its writing instance; rows of one instance come in long runs, so a
        // row shares the previous row's string instead of holding a copy (6 MiB at 100 000).
        var lastOrigin = ""
        try withUnsafeTemporaryAllocation(of: Float.self, capacity: dimension) { scratch in
            try store.forEachLive { row throws(StoreError) in
                var record = try row.record(embedding: false)
                guard let embedding = row.embedding(into: scratch) else {
                    throw StoreError(.io, "corrupt row for '\(record.speakerID)' in \(store.configuration.path): no \(dimension)-float embedding")
                }
                matrix.upsert(record.speakerID, embedding: embedding)
                if record.origin == lastOrigin { record.origin = lastOrigin } else { lastOrigin = record.origin }
                profiles.append(CachedProfile(record))
                candidates.append(PreloadOrder.Candidate(lastAccess: row.lastAccess, updatedAt: row.updatedAt))
            }
        }
        let scanned = ContinuousClock.now
        var cache: [String: CachedProfile] = [:]
        var policy = SieveCachePolicy<String>(capacity: cacheCapacity)
        let admitted = PreloadOrder.admissionOrder(candidates, capacity: cacheCapacity)
        cache.reserveCapacity(admitted.count)
        policy.reserveCapacity(admitted.count)
        for index in admitted {
            policy.insert(profiles[index].speakerID)
            cache[profiles[index].speakerID] = profiles[index]
        }
        return Preloaded(
            matrix: matrix, cache: cache, policy: policy,
            scanTime: scanned - started, admitTime: ContinuousClock.now - scanned)
    }

    // MARK: Background preload

    /// Replaces the empty start-up cache by a background preload, keeping what happened while
    /// it ran: the preload read a snapshot, so a speaker written, deleted or reread since is
    /// taken from the live state, and every profile read meanwhile stays cached. Under the
    /// lock; the caller completes `preloadDone` after releasing it.
    func install(_ preloaded: Preloaded) {
        let live = (matrix: matrix, cache: cache)
        matrix = preloaded.matrix
        cache = preloaded.cache
        policy = preloaded.policy
        for id in touchedDuringPreload {
            matrix.remove(id)
            cache[id] = nil
            policy.remove(id)
        }
        for id in live.matrix.identifiers {
            if let embedding = live.matrix.embedding(of: id) { matrix.upsert(id, embedding: embedding) }
        }
        for (_, entry) in live.cache { enter(entry, turns: 0) }
        touchedDuringPreload = []
        preloadTimes = (preloaded.scanTime, preloaded.admitTime)
        preloading = false
        metrics.size.record(cache.count)
    }

    /// Answers with `body` now, or once a background preload is in (identify and stats need all
    /// of it). `body` takes the lock itself.
    func afterPreload(_ body: @escaping @Sendable () -> ServerResponse) -> ServerResponse {
        guard locked({ preloading }) else { return body() }
        return .later(preloadDone.futureResult.flatMap {
            switch body() {
            case .now(let answer): self.loop.makeSucceededFuture(answer)
            case .later(let future): future
            }
        })
    }

    /// Notes that `id` changed while a background preload runs. Under the lock.
    func touch(_ id: String) {
        if preloading { touchedDuringPreload.insert(id) }
    }
}
