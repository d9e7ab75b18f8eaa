import CoreMetrics
import NIOConcurrencyHelpers
import VoxWire

/// One process's figures, cumulative since it started, kept for the swift-metrics API.
///
/// Every process of voxsync bootstraps `MetricsSystem` with a `VoxMetricsFactory` over one
/// registry; a reporter sends `snapshot()` to the metrics worker about once a second. Names are
/// unprefixed (`cache_hits_total`); the metrics worker adds the namespace when it renders.
///
/// Mapping from swift-metrics: `Counter`/`FloatingPointCounter` → counter; `Meter` and
/// `Recorder(aggregate: false)` → gauge; `Recorder(aggregate: true)` → histogram of the recorded
/// values; `Timer` → histogram in seconds. Each metric has its own lock, so two metrics
/// updated from different threads never contend.
public final class MetricsRegistry: Sendable {
    /// Histogram bounds in seconds: 5 µs to 10 s, so a cache hit and a stalled sync both land
    /// in a bucket of their own.
    public static let latencyBounds: [Double] = [
        0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5,
        0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    struct Key: Hashable, Sendable {
        var name: String
        var labels: [Label]
        struct Label: Hashable, Sendable {
            var name: String
            var value: String
        }

        var sortKey: String { ([name] + labels.map { "\($0.name)=\($0.value)" }).joined(separator: "\u{0}") }

        init(_ name: String, _ dimensions: [(String, String)]) {
            self.name = name
            self.labels = dimensions.map { Label(name: $0.0, value: $0.1) }.sorted { $0.name < $1.name }
        }
    }

    private let metrics = NIOLockedValueBox<[Key: Metric]>([:])

    public init() {}

    enum Metric: Sendable {
        case counter(Scalar)
        case gauge(Scalar)
        case histogram(Histogram)
    }

    /// A counter or gauge value.
    final class Scalar: Sendable {
        let value = NIOLockedValueBox(0.0)
    }

    final class Histogram: Sendable {
        let bounds: [Double]
        let state: NIOLockedValueBox<(counts: [UInt64], sum: Double, count: UInt64)>

        init(bounds: [Double]) {
            self.bounds = bounds
            state = NIOLockedValueBox(([UInt64](repeating: 0, count: bounds.count + 1), 0, 0))
        }

        func observe(_ value: Double) {
            // Linear search: ~20 bounds, and most observations fall in the first few.
            let index = bounds.firstIndex { value <= $0 } ?? bounds.count
            state.withLockedValue { state in
                state.counts[index] &+= 1
                state.sum += value
                state.count &+= 1
            }
        }
    }

    func scalar(_ key: Key, counter: Bool) -> Scalar {
        metrics.withLockedValue { metrics in
            switch metrics[key] {
            case .counter(let scalar), .gauge(let scalar): return scalar
            default:
                let scalar = Scalar()
                metrics[key] = counter ? .counter(scalar) : .gauge(scalar)
                return scalar
            }
        }
    }

    func histogram(_ key: Key, bounds: [Double]) -> Histogram {
        metrics.withLockedValue { metrics in
            if case .histogram(let histogram) = metrics[key] { return histogram }
            let histogram = Histogram(bounds: bounds)
            metrics[key] = .histogram(histogram)
            return histogram
        }
    }

    /// Everything, as the metrics worker receives it.
    public func snapshot(role: WorkerRole, pid: Int32, takenAt: Int64) -> Voxsync_V1_MetricsSnapshot {
        var snapshot = Voxsync_V1_MetricsSnapshot()
        snapshot.role = role
        snapshot.pid = pid
        snapshot.takenAtUnixMs = takenAt
        let all = metrics.withLockedValue { $0 }
        for (key, metric) in all.sorted(by: { $0.key.sortKey < $1.key.sortKey }) {
            let labels = key.labels.map { label -> Voxsync_V1_Label in
                var message = Voxsync_V1_Label()
                message.name = label.name
                message.value = label.value
                return message
            }
            switch metric {
            case .counter(let scalar):
                var sample = Voxsync_V1_CounterSample()
                sample.name = key.name
                sample.labels = labels
                sample.value = scalar.value.withLockedValue { $0 }
                snapshot.counters.append(sample)
            case .gauge(let scalar):
                var sample = Voxsync_V1_GaugeSample()
                sample.name = key.name
                sample.labels = labels
                sample.value = scalar.value.withLockedValue { $0 }
                snapshot.gauges.append(sample)
            case .histogram(let histogram):
                let state = histogram.state.withLockedValue { $0 }
                var sample = Voxsync_V1_HistogramSample()
                sample.name = key.name
                sample.labels = labels
                sample.upperBounds = histogram.bounds
                var running: UInt64 = 0
                sample.bucketCounts = state.counts.map { running &+= $0; return running }
                sample.sum = state.sum
                sample.count = state.count
                snapshot.histograms.append(sample)
            }
        }
        return snapshot
    }
}

/// The swift-metrics backend over a `MetricsRegistry`.
public struct VoxMetricsFactory: MetricsFactory {
    public let registry: MetricsRegistry

    public init(registry: MetricsRegistry) {
        self.registry = registry
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        ScalarHandler(registry.scalar(.init(label, dimensions), counter: true))
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> FloatingPointCounterHandler {
        ScalarHandler(registry.scalar(.init(label, dimensions), counter: true))
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> MeterHandler {
        ScalarHandler(registry.scalar(.init(label, dimensions), counter: false))
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        guard aggregate else { return ScalarHandler(registry.scalar(.init(label, dimensions), counter: false)) }
        return HistogramHandler(registry.histogram(.init(label, dimensions), bounds: MetricsRegistry.latencyBounds), scale: 1)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        HistogramHandler(registry.histogram(.init(label, dimensions), bounds: MetricsRegistry.latencyBounds), scale: 1e-9)
    }

    // Metrics live as long as the process: a destroyed handle's figures stay in the totals.
    public func destroyCounter(_ handler: CounterHandler) {}
    public func destroyFloatingPointCounter(_ handler: FloatingPointCounterHandler) {}
    public func destroyMeter(_ handler: MeterHandler) {}
    public func destroyRecorder(_ handler: RecorderHandler) {}
    public func destroyTimer(_ handler: TimerHandler) {}
}

final class ScalarHandler: CounterHandler, FloatingPointCounterHandler, MeterHandler, RecorderHandler, Sendable {
    let scalar: MetricsRegistry.Scalar

    init(_ scalar: MetricsRegistry.Scalar) {
        self.scalar = scalar
    }

    func increment(by amount: Int64) { scalar.value.withLockedValue { $0 += Double(amount) } }
    func increment(by amount: Double) { scalar.value.withLockedValue { $0 += amount } }
    func decrement(by amount: Double) { scalar.value.withLockedValue { $0 -= amount } }
    func set(_ value: Int64) { scalar.value.withLockedValue { $0 = Double(value) } }
    func set(_ value: Double) { scalar.value.withLockedValue { $0 = value } }
    func record(_ value: Int64) { set(value) }
    func record(_ value: Double) { set(value) }
    func reset() { scalar.value.withLockedValue { $0 = 0 } }
}

final class HistogramHandler: RecorderHandler, TimerHandler, Sendable {
    let histogram: MetricsRegistry.Histogram
    let scale: Double

    init(_ histogram: MetricsRegistry.Histogram, scale: Double) {
        self.histogram = histogram
        self.scale = scale
    }

    func record(_ value: Int64) { histogram.observe(Double(value) * scale) }
    func record(_ value: Double) { histogram.observe(value * scale) }
    func recordNanoseconds(_ duration: Int64) { histogram.observe(Double(duration) * scale) }
}
