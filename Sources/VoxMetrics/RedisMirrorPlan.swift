import VoxWire

/// What one mirror tick writes to Redis, as commands — pure, so the key layout, the increments
/// and the trimming are tested without a server.
///
/// Keys (DESIGN.md section 5), `<series>` being the metric name with its labels, e.g.
/// `queries_total{type="verify"}`:
/// - `<prefix>:metrics:<series>:<instance>`: counters by `INCRBYFLOAT` of what was added since
///   the last tick; gauges by `SET`; both expire after `ttl` without news.
/// - `<prefix>:metrics:ts:<series>:<instance>`: a sorted set per series scored by time (unix
///   ms); each member is `<ms>:<tick>:<value>`, unique per sample, so equal values never
///   overwrite each other (the original system's bug); trimmed to the last `samples` entries.
/// - `<prefix>:instances`: the set of instance ids; `<prefix>:instance:<instance>` exists (with
///   a short TTL) while the instance is alive.
/// - `<prefix>:metrics:prefetch:<instance>`: the prefetch worker's figures (`prefetch_*`) as one
///   JSON object, with the TTL.
/// - `<prefix>:mirror:<instance>`: a hash of the counter totals already added, so a restarted
///   metrics worker continues the increments instead of adding everything again.
public struct RedisMirrorPlan: Sendable {
    public var prefix: String
    public var instance: String
    public var ttlSeconds: Int
    /// Samples kept per time series. Default 1000.
    public var samples: Int

    public init(prefix: String, instance: String, ttlSeconds: Int = 3600, samples: Int = 1000) {
        self.prefix = prefix
        self.instance = instance
        self.ttlSeconds = ttlSeconds
        self.samples = samples
    }

    public var mirrorKey: String { "\(prefix):mirror:\(instance)" }

    public func key(_ series: String) -> String { "\(prefix):metrics:\(series):\(instance)" }
    public func timeSeriesKey(_ series: String) -> String { "\(prefix):metrics:ts:\(series):\(instance)" }

    /// The commands of one tick (to run in one MULTI/EXEC), given the merged figures and the
    /// counter totals already mirrored; also returns the new totals.
    public func commands(
        counters: [(series: String, value: Double)], gauges: [(series: String, value: Double)],
        mirrored: [String: Double], nowMilliseconds: Int64, tick: UInt64
    ) -> (commands: [[String]], mirrored: [String: Double]) {
        var commands: [[String]] = []
        var totals = mirrored
        let ttl = String(ttlSeconds)
        func sample(_ series: String, _ value: Double) {
            let key = timeSeriesKey(series)
            commands.append(["ZADD", key, String(nowMilliseconds), "\(nowMilliseconds):\(tick):\(PrometheusExposition.number(value))"])
            commands.append(["ZREMRANGEBYRANK", key, "0", String(-(samples + 1))])
            commands.append(["EXPIRE", key, ttl])
        }
        for (series, value) in counters {
            let already = mirrored[series] ?? 0
            // A process that restarted counts from zero again: all it reports is new.
            let delta = value >= already ? value - already : value
            let key = key(series)
            if delta != 0 { commands.append(["INCRBYFLOAT", key, PrometheusExposition.number(delta)]) }
            commands.append(["EXPIRE", key, ttl])
            totals[series] = value
            sample(series, value)
        }
        for (series, value) in gauges {
            commands.append(["SET", key(series), PrometheusExposition.number(value), "EX", ttl])
            sample(series, value)
        }
        if !counters.isEmpty {
            commands.append(["HSET", mirrorKey] + counters.flatMap { [$0.series, PrometheusExposition.number($0.value)] })
            commands.append(["EXPIRE", mirrorKey, ttl])
        }
        // The prefetcher's statistics, together as one JSON value (what the original system's
        // dashboards read), once the prefetch worker reports any.
        let prefetch = (counters + gauges).filter { $0.series.hasPrefix("prefetch_") }
        if !prefetch.isEmpty {
            let fields = prefetch.map { "\"\(Self.jsonEscaped($0.series))\":\(Self.jsonNumber($0.value))" }
            commands.append(["SET", "\(prefix):metrics:prefetch:\(instance)", "{" + fields.joined(separator: ",") + "}", "EX", ttl])
        }
        commands.append(["SADD", "\(prefix):instances", instance])
        commands.append(["SET", "\(prefix):instance:\(instance)", String(nowMilliseconds), "EX", "10"])
        return (commands, totals)
    }

    static func jsonEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }

    static func jsonNumber(_ value: Double) -> String {
        value.isFinite ? PrometheusExposition.number(value) : "null"
    }

    /// The series of a snapshot set, merged across processes the way the exposition merges
    /// them: counters and histogram counts/sums as counters, gauges as gauges.
    public static func series(_ snapshots: [Voxsync_V1_MetricsSnapshot]) -> (counters: [(String, Double)], gauges: [(String, Double)]) {
        var counters: [String: Double] = [:]
        var gauges: [String: Double] = [:]
        func name(_ base: String, _ labels: [Voxsync_V1_Label]) -> String {
            guard !labels.isEmpty else { return base }
            return base + "{" + labels.sorted { $0.name < $1.name }.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",") + "}"
        }
        for snapshot in snapshots {
            for sample in snapshot.counters { counters[name(sample.name, sample.labels), default: 0] += sample.value }
            for sample in snapshot.gauges { gauges[name(sample.name, sample.labels), default: 0] += sample.value }
            for sample in snapshot.histograms {
                counters[name(sample.name + "_count", sample.labels), default: 0] += Double(sample.count)
                counters[name(sample.name + "_sum", sample.labels), default: 0] += sample.sum
            }
        }
        return (counters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, gauges.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }
}
