import VoxCore

/// Replays a trace in simulated time through a cache policy, with or without the predictor,
/// and computes Belady's optimal bound — the figures of `voxsync-bench prefetch`.
public struct TraceReplay: Sendable {
    public struct Prefetch: Sendable, Equatable {
        public var intervalMilliseconds: Int64 = 60_000
        public var windowMilliseconds: Int64 = 300_000
        public var threshold = AdaptiveThreshold.Configuration()
        /// The configured cap per interval (`prefetch_max_per_interval`); the replay, like the
        /// worker, sends at most a tenth of the cache per interval.
        public var maxPerInterval = 100
        public var predictor = PrefetchPredictor.Configuration(utcOffsetSeconds: 0)

        public init() {}
    }

    public struct Result: Sendable, Equatable {
        /// Reads and hits counted (those at or after the measuring start).
        public var reads = 0
        public var hits = 0
        /// Prefetched entries loaded, read before eviction, evicted unread (measured period).
        public var prefetched = 0
        public var used = 0
        public var wasted = 0
        public var finalThreshold: Double?

        public var hitRate: Double { reads == 0 ? 0 : Double(hits) / Double(reads) }
        /// Prefetched entries read before eviction, of those decided (read or evicted).
        public var precision: Double? { used + wasted == 0 ? nil : Double(used) / Double(used + wasted) }
    }

    public let trace: [TraceAccess]
    /// Reads before this time (unix ms) train and warm up but are not counted.
    public let measureFrom: Int64

    /// `trace` must be ordered by time.
    public init(trace: [TraceAccess], measureFrom: Int64) {
        self.trace = trace
        self.measureFrom = measureFrom
    }

    /// The demand cache alone (`prefetch` nil) or with the predictor's lists each interval, as
    /// the prefetch worker sends them and the cache worker loads them.
    public func run<Policy: ReplayPolicy>(_ policy: Policy.Type, capacity: Int, prefetch: Prefetch? = nil) -> Result {
        var cache = Policy(capacity: capacity)
        var result = Result()
        var predictor = PrefetchPredictor(configuration: prefetch?.predictor ?? .init())
        var planner = PrefetchPlanner(maxPerInterval: PrefetchPlanner.perInterval(configured: prefetch?.maxPerInterval ?? 1, cacheCapacity: capacity))
        var threshold = AdaptiveThreshold(configuration: prefetch?.threshold ?? .init())
        var marked: Set<String> = []
        var nextTick = trace.first.map { $0.time - $0.time % (prefetch?.intervalMilliseconds ?? 1) } ?? 0
        var tickUsed = 0, tickWasted = 0, tickMisses = 0

        func evicted(_ key: String?, counted: Bool) {
            guard let key, marked.remove(key) != nil else { return }
            tickWasted += 1
            if counted { result.wasted += 1 }
        }

        for access in trace {
            if let prefetch {
                while nextTick <= access.time {
                    let now = nextTick
                    let counted = now >= measureFrom
                    threshold.observe(used: UInt64(tickUsed), wasted: UInt64(tickWasted), misses: UInt64(tickMisses))
                    tickUsed = 0; tickWasted = 0; tickMisses = 0
                    let predictions = predictor.predictions(
                        nowMilliseconds: now, windowMilliseconds: prefetch.windowMilliseconds,
                        minimumConfidence: threshold.value)
                    let list = planner.plan(predictions, threshold: threshold.value, nowMilliseconds: now, windowMilliseconds: prefetch.windowMilliseconds)
                    for speaker in list.prefix(capacity) where !cache.contains(speaker) {
                        let out = cache.insertPrefetched(speaker)
                        marked.insert(speaker)
                        if counted { result.prefetched += 1 }
                        evicted(out, counted: counted)
                    }
                    nextTick += prefetch.intervalMilliseconds
                }
            }
            let counted = access.time >= measureFrom
            if counted { result.reads += 1 }
            if cache.access(access.speaker) {
                if counted { result.hits += 1 }
                if marked.remove(access.speaker) != nil {
                    tickUsed += 1
                    if counted { result.used += 1 }
                }
            } else {
                tickMisses += 1
                evicted(cache.insert(access.speaker), counted: counted)
            }
            if prefetch != nil { predictor.record(access.speaker, atMilliseconds: access.time) }
        }
        if prefetch != nil { result.finalThreshold = threshold.value }
        return result
    }

    /// Belady's MIN with bypass: on a miss with a full cache, evict whichever of the cached
    /// entries and the newcomer is read again furthest in the future. The most hits any
    /// demand cache of this size can get on this trace (a prefetching cache can get more: it
    /// loads before the first read).
    public func belady(capacity: Int) -> Result {
        var ids: [String: Int] = [:]
        let keys = trace.map { access -> Int in
            if let id = ids[access.speaker] { return id }
            let id = ids.count
            ids[access.speaker] = id
            return id
        }
        var nextUse = [Int](repeating: .max, count: keys.count)
        var seen = [Int](repeating: .max, count: ids.count)
        for index in keys.indices.reversed() {
            nextUse[index] = seen[keys[index]]
            seen[keys[index]] = index
        }
        var cachedUntil = [Int?](repeating: nil, count: ids.count)  // key → its next use, if cached
        var heap = MaxHeap()
        var count = 0
        var result = Result()
        for index in keys.indices {
            let key = keys[index]
            let counted = trace[index].time >= measureFrom
            if counted { result.reads += 1 }
            if cachedUntil[key] != nil {
                if counted { result.hits += 1 }
                cachedUntil[key] = nextUse[index]
                heap.push(nextUse[index], key)
                continue
            }
            if count < capacity {
                count += 1
            } else {
                // The furthest next use among the cached (skipping stale heap entries).
                while let top = heap.peek, cachedUntil[top.key] != top.next { heap.pop() }
                guard let top = heap.peek, top.next > nextUse[index] else { continue }  // bypass
                heap.pop()
                cachedUntil[top.key] = nil
            }
            cachedUntil[key] = nextUse[index]
            heap.push(nextUse[index], key)
        }
        return result
    }
}

/// A binary max-heap of (next use, key) for Belady.
struct MaxHeap {
    private var items: [(next: Int, key: Int)] = []

    var peek: (next: Int, key: Int)? { items.first }

    mutating func push(_ next: Int, _ key: Int) {
        items.append((next, key))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[parent].next < items[child].next else { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var largest = parent
            if left < items.count, items[left].next > items[largest].next { largest = left }
            if right < items.count, items[right].next > items[largest].next { largest = right }
            guard largest != parent else { return }
            items.swapAt(parent, largest)
            parent = largest
        }
    }
}
