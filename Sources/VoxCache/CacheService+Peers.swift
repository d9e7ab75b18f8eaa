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
            return .later(done.map { .ack(Ack()) }.flatMapErrorThrowing(Self.answer(for:)))
        default:
            return .now(Self.error(.invalidArgument, "\(request.name) is not served by the cache worker's internal socket"))
        }
    }

    /// Rereads `speakers` (nil: every profile) from SQLite after another process changed them.
    /// The matrix takes the stored embedding and a cached entry the stored record; a speaker
    /// now deleted leaves both (as `delete` does). Everything at once is a new preload.
    private func refresh(_ speakers: [String]?) -> EventLoopFuture<Void> {
        guard let speakers else {
            let capacity = policy.capacity
            return onStore { store in try Self.preload(store, cacheCapacity: capacity) }.map { preloaded in
                self.matrix = preloaded.matrix
                self.cache = preloaded.cache
                self.policy = preloaded.policy
                self.metrics.size.record(self.cache.count)
            }
        }
        return onStore { store in try speakers.map { ($0, try store.get($0)) } }.map { rows in
            for (id, record) in rows {
                if let record {
                    if self.cache[id] != nil {
                        self.admit(record)
                    } else {
                        self.matrix.upsert(id, embedding: record.embedding)
                    }
                } else {
                    self.matrix.remove(id)
                    self.cache[id] = nil
                    self.policy.remove(id)
                }
            }
        }
    }

    /// Loads the speakers the prefetch worker expects to be asked for soon.
    private func prefetch(_ speakers: [String]) -> EventLoopFuture<Void> {
        let wanted = speakers.prefix(policy.capacity).filter { cache[$0] == nil && (try? rules.checkSpeakerID($0)) != nil }
        guard !wanted.isEmpty else { return loop.makeSucceededVoidFuture() }
        return onStore { store in try wanted.compactMap { try store.get($0) } }.map { records in
            for record in records where self.cache[record.speakerID] == nil { self.admit(record) }
        }
    }
}
