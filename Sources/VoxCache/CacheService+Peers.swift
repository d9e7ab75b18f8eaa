import NIOCore
import VoxCore
import VoxStore
import VoxTransport
import VoxWire

/// Messages from the other workers, on the cache worker's internal socket.
extension CacheService {
    /// Answers the internal socket (`<run>/cache.sock`): invalidations from the sync worker,
    /// prefetch lists from the prefetch worker.
    public func respondInternal(to request: Envelope.OneOf_Message) -> ServerResponse {
        switch request {
        case .invalidate(let invalidate):
            let done = loop.flatSubmit { self.refresh(invalidate.all ? nil : invalidate.speakerIds) }
            return .later(done.map { .ack(Ack()) }.flatMapErrorThrowing(Self.answer(for:)))
        case .prefetchList(let list):
            let done = loop.flatSubmit { self.prefetch(list.speakerIds) }
            return .later(done.map { .prefetchListOk($0) }.flatMapErrorThrowing(Self.answer(for:)))
        default:
            return .now(Self.error(.invalidArgument, "\(request.name) is not served by the cache worker's internal socket"))
        }
    }

    /// Rereads `speakers` (nil: every profile) from SQLite after another process changed them.
    /// The matrix takes the stored embedding and a cached entry the stored record; a speaker
    /// now deleted leaves both (as `delete` does). Everything at once is a new preload.
    private func refresh(_ speakers: [String]?) -> EventLoopFuture<Void> {
        guard let speakers else {
            // A background preload still running reads an older snapshot: reload after it.
            let (preloading, capacity) = locked { (self.preloading, policy.capacity) }
            if preloading { return preloadDone.futureResult.flatMap { self.refresh(nil) } }
            return onStore { store in
                let preloaded = try Self.preload(store, cacheCapacity: capacity)
                self.locked {
                    self.matrix = preloaded.matrix
                    self.cache = preloaded.cache
                    self.policy = preloaded.policy
                    self.metrics.size.record(self.cache.count)
                    // Prefetched entries the new preload left out went unread.
                    for _ in 0..<self.prefetched.retain(where: { self.cache[$0] != nil }) {
                        self.notePrefetchOutcome(used: false)
                    }
                }
            }
        }
        return onStore { store in
            let rows = try speakers.map { ($0, try store.get($0)) }
            self.locked { self.apply(rows) }
        }
    }

    /// Rereads of invalidated speakers: a cached one is replaced, an uncached one only in the
    /// matrix, a deleted one removed everywhere. Under the lock.
    private func apply(_ rows: [(String, ProfileRecord?)]) {
        for (id, record) in rows {
            touch(id)
            if let record {
                if cache[id] != nil {
                    admit(record)
                } else {
                    matrix.upsert(id, embedding: record.embedding)
                }
            } else {
                matrix.remove(id)
                cache[id] = nil
                policy.remove(id)
                prefetched.forget(id)
            }
        }
    }

    /// Loads the speakers the prefetch worker expects to be asked for soon and marks them
    /// prefetched (only those not cached already: for the others the prefetch adds nothing).
    /// At most a cache's worth per list, so a list never evicts its own entries.
    ///
    /// While a background preload runs the list is ignored: the preload brings the most
    /// recently used profiles anyway, and marks set now would count its entries as the
    /// prefetch's.
    private func prefetch(_ speakers: [String]) -> EventLoopFuture<Voxsync_V1_PrefetchListResponse> {
        let (counted, wanted): (Voxsync_V1_PrefetchListResponse, [String]) = locked {
            var answer = Voxsync_V1_PrefetchListResponse()
            guard !preloading else { return (withTotals(answer), []) }
            var wanted: [String] = []
            var seen = Set<String>()
            for speaker in speakers.prefix(policy.capacity) where seen.insert(speaker).inserted {
                if cache[speaker] != nil {
                    answer.alreadyCached += 1
                } else if (try? rules.checkSpeakerID(speaker)) == nil {
                    answer.notFound += 1
                } else {
                    wanted.append(speaker)
                }
            }
            return (wanted.isEmpty ? withTotals(answer) : answer, wanted)
        }
        guard !wanted.isEmpty else { return loop.makeSucceededFuture(counted) }
        let reads = wanted
        return onStore { store in
            let records = try reads.map { try store.get($0) }
            return self.locked { self.admitPrefetched(records, counted: counted) }
        }
    }

    /// Admits what a prefetch list read, marked prefetched. Under the lock.
    private func admitPrefetched(_ records: [ProfileRecord?], counted: Voxsync_V1_PrefetchListResponse) -> Voxsync_V1_PrefetchListResponse {
        var answer = counted
        for record in records {
            guard let record else {
                answer.notFound += 1
                continue
            }
            // A miss may have loaded it while SQLite was read.
            guard cache[record.speakerID] == nil else {
                answer.alreadyCached += 1
                continue
            }
            admit(record, turns: Self.prefetchTurns)
            prefetched.loaded(record.speakerID)
            metrics.prefetchLoaded.increment()
            answer.loaded += 1
        }
        return withTotals(answer)
    }

    /// The response with the ledger's totals. Under the lock.
    private func withTotals(_ answer: Voxsync_V1_PrefetchListResponse) -> Voxsync_V1_PrefetchListResponse {
        var answer = answer
        answer.loadedTotal = prefetched.loaded
        answer.usedTotal = prefetched.used
        answer.wastedTotal = prefetched.wasted
        return answer
    }
}
