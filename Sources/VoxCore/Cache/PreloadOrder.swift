/// Which stored profiles the cache worker preloads at start, and in what order: the most
/// recently used up to the cache's capacity (DESIGN §3, issue 4). "Used" is the profile's
/// recorded last access; profiles never served (0) rank by when they were last written.
///
/// The order matters to SIEVE: a profile admitted later sits nearer the head, so the hottest
/// are admitted last and the coldest of the preload are the first the hand reaches.
public enum PreloadOrder {
    /// One stored profile's times (unix ms).
    public struct Candidate: Sendable, Equatable {
        public var lastAccess: Int64
        public var updatedAt: Int64

        public init(lastAccess: Int64, updatedAt: Int64) {
            self.lastAccess = lastAccess
            self.updatedAt = updatedAt
        }
    }

    /// Indices into `candidates` of the at most `capacity` most recently used, coldest first
    /// (the order to admit them in). Ties keep the candidates' own order, so a preload is
    /// deterministic.
    public static func admissionOrder(_ candidates: [Candidate], capacity: Int) -> [Int] {
        let hottestFirst = candidates.indices.sorted { a, b in
            let x = candidates[a], y = candidates[b]
            if x.lastAccess != y.lastAccess { return x.lastAccess > y.lastAccess }
            if x.updatedAt != y.updatedAt { return x.updatedAt > y.updatedAt }
            return a < b
        }
        return Array(hottestFirst.prefix(max(0, capacity)).reversed())
    }
}
