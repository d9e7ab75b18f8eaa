import VoxCore

/// The eviction decisions a replay runs through: the cache's own policy or LRU for comparison.
public protocol ReplayPolicy {
    init(capacity: Int)
    /// A read: true (and remembered) if cached.
    mutating func access(_ key: String) -> Bool
    /// Admits `key`; returns the key evicted to make room, if any.
    mutating func insert(_ key: String) -> String?
    func contains(_ key: String) -> Bool
    /// Admits an entry the prefetcher loads, the way the cache worker does.
    mutating func insertPrefetched(_ key: String) -> String?
}

extension ReplayPolicy {
    public mutating func insertPrefetched(_ key: String) -> String? { insert(key) }
}

extension SieveCachePolicy: ReplayPolicy where Key == String {
    public mutating func insert(_ key: String) -> String? { insert(key, turns: 0) }
    public mutating func insertPrefetched(_ key: String) -> String? { insert(key, turns: Self.prefetchTurns) }
}

/// Least recently used, for the replay's "without prefetch" comparison: a dictionary into a
/// doubly linked list kept in arrays (no per-entry allocation).
public struct LRUCachePolicy: ReplayPolicy, Sendable {
    private struct Node: Sendable {
        var key: String
        var newer: Int?
        var older: Int?
    }

    public let capacity: Int
    private var nodes: [Node] = []
    private var index: [String: Int] = [:]
    private var head: Int?  // most recent
    private var tail: Int?  // least recent

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    public var count: Int { index.count }

    public func contains(_ key: String) -> Bool { index[key] != nil }

    public mutating func access(_ key: String) -> Bool {
        guard let slot = index[key] else { return false }
        moveToFront(slot)
        return true
    }

    public mutating func insert(_ key: String) -> String? {
        if let slot = index[key] {
            moveToFront(slot)
            return nil
        }
        if index.count < capacity {
            nodes.append(Node(key: key, newer: nil, older: head))
            let slot = nodes.count - 1
            if let head { nodes[head].newer = slot }
            head = slot
            if tail == nil { tail = slot }
            index[key] = slot
            return nil
        }
        // Reuse the least recent node for the new key.
        let slot = tail!
        let evicted = nodes[slot].key
        index[evicted] = nil
        nodes[slot].key = key
        index[key] = slot
        moveToFront(slot)
        return evicted
    }

    private mutating func moveToFront(_ slot: Int) {
        guard head != slot else { return }
        let node = nodes[slot]
        if let newer = node.newer { nodes[newer].older = node.older }
        if let older = node.older { nodes[older].newer = node.newer } else { tail = node.newer }
        nodes[slot].newer = nil
        nodes[slot].older = head
        if let head { nodes[head].newer = slot }
        head = slot
    }
}
