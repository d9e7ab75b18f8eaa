/// The cache's account of what prefetching did: which cached entries a prefetch list loaded and
/// nobody has read yet, and how each of them ended.
///
/// An entry is *marked* when a prefetch list loads it (never when it was cached already: then
/// the prefetch added nothing). Its first read counts as *used* — the hit the prefetch added —
/// and clears the mark; leaving the cache unread counts as *wasted*. Precision is
/// used / (used + wasted): of the prefetched entries whose fate is known, the share that paid
/// off. Entries still marked are undecided and count in neither.
///
/// A pure value, like the eviction policy it sits next to; the cache worker calls it on its
/// event loop wherever it counts a hit, evicts or forgets an entry.
public struct PrefetchLedger<Key: Hashable & Sendable>: Sendable {
    private var marked: Set<Key> = []
    /// Entries loaded by prefetch lists.
    public private(set) var loaded: UInt64 = 0
    /// Prefetched entries read before they left the cache.
    public private(set) var used: UInt64 = 0
    /// Prefetched entries that left the cache unread.
    public private(set) var wasted: UInt64 = 0

    public init() {}

    /// Entries loaded by a prefetch and not read yet.
    public var pending: Int { marked.count }

    /// used / (used + wasted); nil until a prefetched entry was read or evicted.
    public var precision: Double? {
        used + wasted == 0 ? nil : Double(used) / Double(used + wasted)
    }

    /// A prefetch list put `key` into the cache (it was not there before).
    public mutating func loaded(_ key: Key) {
        if marked.insert(key).inserted { loaded += 1 }
    }

    /// `key` was read from the cache (a hit). True when this is the first read of a prefetched
    /// entry: a hit the prefetch added.
    @discardableResult
    public mutating func read(_ key: Key) -> Bool {
        // The common case (nothing prefetched waits) costs no hashing.
        guard !marked.isEmpty, marked.remove(key) != nil else { return false }
        used += 1
        return true
    }

    /// `key` left the cache to make room (or with a reload of everything). True when it was a
    /// prefetched entry nobody read: a wasted prefetch.
    @discardableResult
    public mutating func evicted(_ key: Key) -> Bool {
        // As in `read`: with nothing prefetched unread (every write of an enroll evicts once
        // the cache is full), no hashing.
        guard !marked.isEmpty, marked.remove(key) != nil else { return false }
        wasted += 1
        return true
    }

    /// `key` left the cache because its profile was deleted: neither used nor wasted, the
    /// prefetch's outcome is unknown.
    public mutating func forget(_ key: Key) {
        guard !marked.isEmpty else { return }
        marked.remove(key)
    }

    /// After a reload of the whole cache: marked entries no longer cached left unread (wasted).
    /// Returns how many.
    @discardableResult
    public mutating func retain(where isCached: (Key) -> Bool) -> Int {
        let gone = marked.filter { !isCached($0) }
        for key in gone { evicted(key) }
        return gone.count
    }
}
