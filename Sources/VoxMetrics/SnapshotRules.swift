import VoxCore
import VoxWire

/// What the metrics worker accepts from another process: bounded and well-formed, so one bad
/// sender cannot bloat or break the exposition.
public enum SnapshotRules {
    public static let maxSamples = 10_000
    public static let maxLabels = 8
    public static let maxBounds = 64

    /// Why `snapshot` is refused, or nil when it is fine.
    public static func problem(in snapshot: Voxsync_V1_MetricsSnapshot) -> String? {
        guard snapshot.role != .metrics, snapshot.role != .unspecified else {
            return "role must be the sender's (supervisor, cache, sync or prefetch)"
        }
        let series = snapshot.counters.map { ($0.name, $0.labels) } + snapshot.gauges.map { ($0.name, $0.labels) }
            + snapshot.histograms.map { ($0.name, $0.labels) }
        guard series.count <= maxSamples else { return "\(series.count) samples; at most \(maxSamples)" }
        for (name, labels) in series {
            guard isName(name) else { return "metric name '\(name.prefix(64))' is not [a-zA-Z_][a-zA-Z0-9_]* (at most 128 bytes)" }
            guard labels.count <= maxLabels else { return "\(name) has \(labels.count) labels; at most \(maxLabels)" }
            for label in labels where !isName(label.name) || label.value.utf8.count > 256 {
                return "\(name) has a bad label '\(label.name.prefix(64))' (name [a-zA-Z_][a-zA-Z0-9_]*, value at most 256 bytes)"
            }
        }
        for histogram in snapshot.histograms {
            guard histogram.bucketCounts.count == histogram.upperBounds.count + 1, histogram.upperBounds.count <= maxBounds,
                  histogram.upperBounds.allSatisfy(\.isFinite),
                  zip(histogram.upperBounds, histogram.upperBounds.dropFirst()).allSatisfy({ $0 < $1 }),
                  zip(histogram.bucketCounts, histogram.bucketCounts.dropFirst()).allSatisfy({ $0 <= $1 }),
                  histogram.bucketCounts.last == histogram.count else {
                return "histogram \(histogram.name) needs ascending finite bounds (at most \(maxBounds)) and cumulative buckets, one per bound plus +Inf, ending at its count"
            }
        }
        return nil
    }

    /// A Prometheus metric or label name, at most 128 bytes.
    public static func isName(_ text: String) -> Bool {
        PrometheusName.isValid(text)
    }
}
