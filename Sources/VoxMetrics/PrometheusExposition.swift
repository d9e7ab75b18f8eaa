import VoxWire

/// Renders the snapshots of every process as one Prometheus exposition: text format 0.0.4, or
/// OpenMetrics 1.0 when the scraper asks for it.
///
/// Pure: snapshots in, text out. The same metric (name and labels) reported by several
/// processes is summed. Names get the namespace prefix here (`voxsync_cache_hits_total`; with
/// namespace `jarvis`, the original system's names exactly).
///
/// (swift-prometheus's registry is built to be fed by one process's own metrics; it cannot take
/// another process's cumulative bucket counts, which is what the metrics worker receives, so
/// the exposition is written here — it is a small, fully specified format.)
public enum PrometheusExposition {
    public enum Format: Sendable {
        case text
        case openMetrics

        public var contentType: String {
            switch self {
            case .text: "text/plain; version=0.0.4; charset=utf-8"
            case .openMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
            }
        }

        /// The format a scraper's `Accept` header asks for.
        public init(accept: String?) {
            self = accept?.contains("application/openmetrics-text") == true ? .openMetrics : .text
        }
    }

    /// What each known metric means (`# HELP`). Unknown names still render, with a generic help.
    public static let help: [String: String] = [
        "cache_hits_total": "Profile reads answered from memory.",
        "cache_misses_total": "Profile reads that had to go to SQLite.",
        "cache_size": "Profiles held in the in-memory cache.",
        "queries_total": "Requests served, by type (put, get, verify, identify, delete, list, stats).",
        "read_latency_seconds": "Time to answer a read (get, verify), by source: cache or sqlite.",
        "write_latency_seconds": "Time from a write's arrival to its durable commit (group commit included).",
        "syncs_total": "Pushes to PostgreSQL, by status: success (profiles pushed), failed (failed attempts), dead_letter (profiles given up).",
        "sync_latency_seconds": "Time of one multi-row upsert to PostgreSQL.",
        "queue_size": "Outbox rows waiting to be pushed to PostgreSQL.",
        "queue_oldest_age_seconds": "Age of the oldest outbox row.",
        "dead_letters": "Profiles PostgreSQL refused too often.",
        "pulled_total": "Remote changes applied locally.",
        "connection_pool_size": "PostgreSQL connections configured.",
        "connection_pool_load": "Busy PostgreSQL connections / pool size.",
        "circuit_state": "Circuit breaker in front of PostgreSQL: 0 closed, 1 open, 2 half-open.",
        "worker_up": "1 when the worker is running and ready, else 0.",
        "worker_restarts_total": "Restarts of the worker since the supervisor started.",
        "ipc_messages_total": "Worker-to-worker messages, by peer and outcome (delivered, dropped).",
        "metrics_snapshots_total": "Snapshots received by the metrics worker, by process role.",
    ]

    public static func render(_ snapshots: [Voxsync_V1_MetricsSnapshot], namespace: String, format: Format = .text) -> String {
        var families: [String: Family] = [:]
        for snapshot in snapshots {
            for sample in snapshot.counters {
                families[sample.name, default: Family(kind: .counter)].add(labels(sample.labels), value: sample.value)
            }
            for sample in snapshot.gauges {
                families[sample.name, default: Family(kind: .gauge)].add(labels(sample.labels), value: sample.value)
            }
            for sample in snapshot.histograms {
                families[sample.name, default: Family(kind: .histogram)].add(labels(sample.labels), histogram: sample)
            }
        }
        var out = ""
        for name in families.keys.sorted() {
            let family = families[name]!
            let full = namespace.isEmpty ? name : "\(namespace)_\(name)"
            // OpenMetrics names a counter family without its `_total` suffix.
            let familyName = format == .openMetrics && family.kind == .counter && full.hasSuffix("_total") ? String(full.dropLast(6)) : full
            out += "# HELP \(familyName) \(escapeHelp(help[name] ?? "voxsync metric \(name)."))\n"
            out += "# TYPE \(familyName) \(family.kind.rawValue)\n"
            for (labels, series) in family.series.sorted(by: { $0.key < $1.key }) {
                switch series {
                case .value(let value):
                    out += "\(full)\(render(labels)) \(number(value))\n"
                case .histogram(let bounds, let cumulative, let sum, let count):
                    for (bound, bucket) in zip(bounds + [.infinity], cumulative) {
                        out += "\(full)_bucket\(render(labels + [("le", bound.isInfinite ? "+Inf" : number(bound))])) \(bucket)\n"
                    }
                    out += "\(full)_sum\(render(labels)) \(number(sum))\n"
                    out += "\(full)_count\(render(labels)) \(count)\n"
                }
            }
        }
        if format == .openMetrics { out += "# EOF\n" }
        return out
    }

    // MARK: Families

    private struct Family {
        enum Kind: String { case counter, gauge, histogram }
        enum Series {
            case value(Double)
            case histogram(bounds: [Double], cumulative: [UInt64], sum: Double, count: UInt64)
        }

        var kind: Kind
        /// Keyed by the rendered label set, so equal series from several processes add up.
        var series: [LabelSet: Series] = [:]

        mutating func add(_ labels: LabelSet, value: Double) {
            if case .value(let existing) = series[labels] {
                series[labels] = .value(existing + value)
            } else {
                series[labels] = .value(value)
            }
        }

        mutating func add(_ labels: LabelSet, histogram sample: Voxsync_V1_HistogramSample) {
            // A sample whose buckets do not match its bounds is dropped rather than rendered wrong.
            guard sample.bucketCounts.count == sample.upperBounds.count + 1 else { return }
            if case .histogram(let bounds, let cumulative, let sum, let count) = series[labels], bounds == sample.upperBounds {
                series[labels] = .histogram(
                    bounds: bounds, cumulative: zip(cumulative, sample.bucketCounts).map { $0 &+ $1 },
                    sum: sum + sample.sum, count: count &+ sample.count)
            } else {
                series[labels] = .histogram(bounds: sample.upperBounds, cumulative: sample.bucketCounts, sum: sample.sum, count: sample.count)
            }
        }
    }

    /// Label pairs sorted by name, compared as their rendering.
    private struct LabelSet: Hashable, Comparable {
        var pairs: [(String, String)]
        var rendered: String

        static func == (lhs: LabelSet, rhs: LabelSet) -> Bool { lhs.rendered == rhs.rendered }
        static func < (lhs: LabelSet, rhs: LabelSet) -> Bool { lhs.rendered < rhs.rendered }
        func hash(into hasher: inout Hasher) { hasher.combine(rendered) }

        static func + (lhs: LabelSet, rhs: [(String, String)]) -> [(String, String)] { lhs.pairs + rhs }
    }

    private static func labels(_ labels: [Voxsync_V1_Label]) -> LabelSet {
        let pairs = labels.map { ($0.name, $0.value) }.sorted { $0.0 < $1.0 }
        return LabelSet(pairs: pairs, rendered: render(pairs))
    }

    private static func render(_ labels: LabelSet) -> String { labels.rendered }

    private static func render(_ pairs: [(String, String)]) -> String {
        guard !pairs.isEmpty else { return "" }
        return "{" + pairs.map { "\(sanitize($0.0))=\"\(escapeValue($0.1))\"" }.joined(separator: ",") + "}"
    }

    /// A label name as Prometheus allows it: `[a-zA-Z_][a-zA-Z0-9_]*`.
    private static func sanitize(_ name: String) -> String {
        var out = String(name.unicodeScalars.map { scalar in
            (scalar.properties.isAlphabetic && scalar.isASCII) || scalar == "_" || ("0"..."9").contains(scalar) ? Character(scalar) : "_"
        })
        if out.first.map({ $0.isNumber }) ?? true { out = "_" + out }
        return out
    }

    private static func escapeValue(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    private static func escapeHelp(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// A value as Prometheus reads it: integers without a fraction, `+Inf`, `NaN`.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
