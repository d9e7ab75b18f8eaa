/// The speakers served since the last flush of access times to the store.
///
/// Recording an access is one set insertion on the cache's thread: no clock read, no write
/// per verify. Every flush interval the shell drains the set and stamps all of it with the
/// flush time in one transaction, so `last_access` is accurate to the interval — plenty for
/// choosing what to preload after a restart — and costs one small write per interval however
/// many verifies there were. Bounded by the number of distinct speakers, which the store
/// already holds.
public struct AccessLog: Sendable {
    private var speakers: Set<String> = []

    public init() {}

    public var count: Int { speakers.count }

    public mutating func record(_ speakerID: String) {
        speakers.insert(speakerID)
    }

    /// Every speaker recorded since the last drain, in id order (so a flush writes the store's
    /// rows in key order); the log is empty afterwards.
    public mutating func drain() -> [String] {
        defer { speakers.removeAll(keepingCapacity: true) }
        return speakers.sorted()
    }
}
