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
/// - `<prefix>:mirror:<instance>`: a hash of the counter totals already added, per series and
///   process (`<series>@<role>-<pid>`), so a restarted metrics worker continues the increments
///   instead of adding everything again, and a restarted worker's new total is all new even if
///   it has passed the old one before the mirror saw it (say, during a Redis outage).
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

    /// The commands of one tick (to run in one MULTI/EXEC), given counters merged over the
    /// processes (each series one total) and the totals already mirrored; also returns the new
    /// totals.
    public func commands(
        counters: [(series: String, value: Double)], gauges: [(series: String, value: Double)],
        mirrored: [String: Double], nowMilliseconds: Int64, tick: UInt64
    ) -> (commands: [[String]], mirrored: [String: Double]) {
        commands(processCounters: counters.map { ($0.series, "", $0.value) }, gauges: gauges,
                 mirrored: mirrored, nowMilliseconds: nowMilliseconds, tick: tick)
    }

    /// The commands of one tick, given each process's counter totals (`process` names it, e.g.
    /// `cache-4242`; empty for totals already merged). A process counts from zero when it
    /// starts, so each process's total is compared with what was mirrored of that same
    /// process: a new process (a restarted worker) adds all it reports. A process's totals are
    /// dropped once another process of its role reports (it was replaced); a process merely
    /// missing from this tick (its snapshot not in yet) keeps them.
    public func commands(
        processCounters: [(series: String, process: String, value: Double)], gauges: [(series: String, value: Double)],
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
        var order: [String] = []
        var bySeries: [String: [(process: String, value: Double)]] = [:]
        for (series, process, value) in processCounters {
            if bySeries[series] == nil { order.append(series) }
            bySeries[series, default: []].append((process, value))
        }
        var counters: [(series: String, value: Double)] = []
        for series in order {
            let processes = bySeries[series]!
            let sum = processes.reduce(0) { $0 + $1.value }
            var delta = 0.0
            let perProcess = processes.contains { !$0.process.isEmpty }
            if perProcess, mirrored[series] != nil, !mirrored.keys.contains(where: { $0.hasPrefix(series + "@") }) {
                // Totals kept by an earlier version, merged over the processes: continue from them once.
                let already = mirrored[series]!
                delta = sum >= already ? sum - already : sum
            } else {
                for (process, value) in processes {
                    let field = process.isEmpty ? series : "\(series)@\(process)"
                    let already = mirrored[field] ?? 0
                    // A process that restarted counts from zero again: all it reports is new.
                    delta += value >= already ? value - already : value
                }
            }
            for (process, value) in processes { totals[process.isEmpty ? series : "\(series)@\(process)"] = value }
            if perProcess { totals[series] = nil }  // an earlier version's merged total, now carried per process
            let key = key(series)
            if delta != 0 { commands.append(["INCRBYFLOAT", key, PrometheusExposition.number(delta)]) }
            commands.append(["EXPIRE", key, ttl])
            counters.append((series, sum))
            sample(series, sum)
        }
        for (series, value) in gauges {
            commands.append(["SET", key(series), PrometheusExposition.number(value), "EX", ttl])
            sample(series, value)
        }
        // Processes replaced by a newer one of the same role (`<role>-<pid>`) are gone for good.
        let reporting = Set(processCounters.map(\.process).filter { !$0.isEmpty })
        let roles = Set(reporting.map { Self.role(of: $0) })
        totals = totals.filter { key, _ in
            guard let at = key.lastIndex(of: "@") else { return true }
            let process = String(key[key.index(after: at)...])
            return reporting.contains(process) || !roles.contains(Self.role(of: process))
        }
        if !totals.isEmpty {
            // Replaced whole, so the totals of processes that are gone do not pile up.
            commands.append(["DEL", mirrorKey])
            commands.append(["HSET", mirrorKey] + totals.sorted { $0.key < $1.key }.flatMap { [$0.key, PrometheusExposition.number($0.value)] })
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

    /// The counters of a snapshot set per process (`<role>-<pid>`), histogram counts and sums
    /// among them, and the gauges merged across processes.
    public static func processSeries(_ snapshots: [Voxsync_V1_MetricsSnapshot]) -> (counters: [(String, String, Double)], gauges: [(String, Double)]) {
        var counters: [(String, String, Double)] = []
        for snapshot in snapshots {
            let process = "\(snapshot.role.rawValue)-\(snapshot.pid)"
            for sample in snapshot.counters { counters.append((name(sample.name, sample.labels), process, sample.value)) }
            for sample in snapshot.histograms {
                counters.append((name(sample.name + "_count", sample.labels), process, Double(sample.count)))
                counters.append((name(sample.name + "_sum", sample.labels), process, sample.sum))
            }
        }
        counters.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        return (counters, series(snapshots).gauges)
    }

    static func role(of process: String) -> Substring {
        process.prefix { $0 != "-" }
    }

    static func name(_ base: String, _ labels: [Voxsync_V1_Label]) -> String {
        guard !labels.isEmpty else { return base }
        return base + "{" + labels.sorted { $0.name < $1.name }.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",") + "}"
    }

    /// The series of a snapshot set, merged across processes the way the exposition merges
    /// them: counters and histogram counts/sums as counters, gauges as gauges.
    public static func series(_ snapshots: [Voxsync_V1_MetricsSnapshot]) -> (counters: [(String, Double)], gauges: [(String, Double)]) {
        var counters: [String: Double] = [:]
        var gauges: [String: Double] = [:]
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
