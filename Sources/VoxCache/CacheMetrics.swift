import CoreMetrics
import VoxWire

/// The cache worker's figures (names of DESIGN.md section 5), through swift-metrics.
struct CacheMetrics {
    let hits = Counter(label: "cache_hits_total")
    let misses = Counter(label: "cache_misses_total")
    let size = Gauge(label: "cache_size")
    let readFromCache = Timer(label: "read_latency_seconds", dimensions: [("source", "cache")])
    let readFromSQLite = Timer(label: "read_latency_seconds", dimensions: [("source", "sqlite")])
    let write = Timer(label: "write_latency_seconds")
    // Prefetch outcomes (`PrefetchLedger`); the metrics worker also mirrors every `prefetch_*`
    // figure into Redis as one JSON value.
    let prefetchLoaded = Counter(label: "prefetch_loaded_total")
    let prefetchUsed = Counter(label: "prefetch_used_total")
    let prefetchWasted = Counter(label: "prefetch_wasted_total")

    /// `prefetch_precision`, made at its first value: a gauge exists from its making, and a
    /// 0 before anything was measured would read as "every prefetch wasted".
    static func prefetchPrecision() -> Gauge {
        Gauge(label: "prefetch_precision")
    }
    // One counter per request type, picked by a switch: no string hashing per request.
    private let puts = Self.queries("put"), gets = Self.queries("get"), verifies = Self.queries("verify")
    private let identifies = Self.queries("identify"), deletes = Self.queries("delete"), lists = Self.queries("list")
    private let stats = Self.queries("stats"), others = Self.queries("other")

    private static func queries(_ type: String) -> Counter {
        Counter(label: "queries_total", dimensions: [("type", type)])
    }

    func query(_ request: Envelope.OneOf_Message) {
        switch request {
        case .verify: verifies.increment()
        case .get: gets.increment()
        case .put: puts.increment()
        case .identify: identifies.increment()
        case .delete: deletes.increment()
        case .list: lists.increment()
        case .stats: stats.increment()
        default: others.increment()
        }
    }
}
