import CoreMetrics
import Testing
import VoxMetrics
import VoxWire

@Suite struct MetricsRegistryTests {
    @Test func swiftMetricsCallsLandInTheSnapshot() {
        let registry = MetricsRegistry()
        let factory = VoxMetricsFactory(registry: registry)
        let hits = Counter(label: "cache_hits_total", factory: factory)
        hits.increment()
        hits.increment(by: 4)
        Counter(label: "cache_hits_total", factory: factory).increment()  // the same series
        Gauge(label: "cache_size", factory: factory).record(42)
        let timer = Timer(label: "read_latency_seconds", dimensions: [("source", "cache")], factory: factory)
        timer.recordNanoseconds(3_000)        // 3 µs
        timer.recordNanoseconds(2_000_000)    // 2 ms
        timer.recordNanoseconds(20_000_000_000)  // 20 s: past the last bound

        let snapshot = registry.snapshot(role: .cache, pid: 7, takenAt: 1)
        #expect(snapshot.counters.map(\.name) == ["cache_hits_total"] && snapshot.counters[0].value == 6)
        #expect(snapshot.gauges.map(\.value) == [42])
        let histogram = snapshot.histograms[0]
        #expect(histogram.labels.map(\.value) == ["cache"] && histogram.count == 3)
        #expect(histogram.bucketCounts.first == 1, "3 µs falls in the first bucket (5 µs)")
        #expect(histogram.bucketCounts[histogram.upperBounds.firstIndex(of: 0.0025)!] == 2, "2 ms by 2.5 ms")
        #expect(histogram.bucketCounts.last == 3, "+Inf holds everything")
        #expect(abs(histogram.sum - 20.002003) < 1e-9)
        #expect(SnapshotRules.problem(in: snapshot) == nil)
    }
}

@Suite struct PrometheusExpositionTests {
    func snapshot(_ role: WorkerRole, hits: Double, restarts: Double? = nil) -> Voxsync_V1_MetricsSnapshot {
        let registry = MetricsRegistry()
        registry.setCounter("cache_hits_total", to: hits)
        registry.setGauge("worker_up", [("worker", "cache")], to: 1)
        if let restarts { registry.setCounter("worker_restarts_total", [("worker", "sync \"x\"\n")], to: restarts) }
        Timer(label: "write_latency_seconds", factory: VoxMetricsFactory(registry: registry)).recordNanoseconds(1_000_000)
        return registry.snapshot(role: role, pid: 1, takenAt: 0)
    }

    @Test func rendersTextFormatWithTheNamespaceSummingAcrossProcesses() {
        let text = PrometheusExposition.render([snapshot(.cache, hits: 5), snapshot(.sync, hits: 2, restarts: 3)], namespace: "jarvis")
        #expect(text.contains("# HELP jarvis_cache_hits_total Profile reads answered from memory.\n# TYPE jarvis_cache_hits_total counter\njarvis_cache_hits_total 7\n"))
        #expect(text.contains("jarvis_worker_up{worker=\"cache\"} 2\n"))
        #expect(text.contains("jarvis_worker_restarts_total{worker=\"sync \\\"x\\\"\\n\"} 3\n"), "label values escaped")
        #expect(text.contains("# TYPE jarvis_write_latency_seconds histogram\n"))
        #expect(text.contains("jarvis_write_latency_seconds_bucket{le=\"0.001\"} 2\n"))
        #expect(text.contains("jarvis_write_latency_seconds_bucket{le=\"+Inf\"} 2\n"))
        #expect(text.contains("jarvis_write_latency_seconds_count 2\n"))
        #expect(!text.contains("# EOF"))
    }

    @Test func openMetricsNamesCounterFamiliesWithoutTotalAndEnds() {
        let text = PrometheusExposition.render([snapshot(.cache, hits: 1)], namespace: "voxsync", format: .openMetrics)
        #expect(text.contains("# TYPE voxsync_cache_hits counter\nvoxsync_cache_hits_total 1\n"))
        #expect(text.hasSuffix("# EOF\n"))
        #expect(PrometheusExposition.Format(accept: "application/openmetrics-text; version=1.0.0,text/plain;q=0.5") == .openMetrics)
        #expect(PrometheusExposition.Format(accept: "text/plain") == .text)
    }
}

@Suite struct SnapshotRulesTests {
    @Test func refusesWhatWouldBreakOrBloatTheExposition() {
        var bad = Voxsync_V1_MetricsSnapshot()
        bad.role = .cache
        var counter = Voxsync_V1_CounterSample()
        counter.name = "bad name{"
        bad.counters = [counter]
        #expect(SnapshotRules.problem(in: bad)?.contains("metric name") == true)

        bad.counters = []
        var histogram = Voxsync_V1_HistogramSample()
        histogram.name = "h"
        histogram.upperBounds = [1, 0.5]
        histogram.bucketCounts = [1, 1, 1]
        histogram.count = 1
        bad.histograms = [histogram]
        #expect(SnapshotRules.problem(in: bad)?.contains("ascending") == true)

        bad.histograms = []
        bad.role = .metrics
        #expect(SnapshotRules.problem(in: bad)?.contains("role") == true)

        bad.role = .sync
        bad.gauges = (0...SnapshotRules.maxSamples).map { index in
            var gauge = Voxsync_V1_GaugeSample()
            gauge.name = "g\(index)"
            return gauge
        }
        #expect(SnapshotRules.problem(in: bad)?.contains("at most") == true)
    }
}

@Suite struct RedisMirrorPlanTests {
    let plan = RedisMirrorPlan(prefix: "jarvis", instance: "i-1", ttlSeconds: 3600, samples: 1000)

    @Test func countersGoUpByWhatWasAddedAndSurviveARestartOfTheirProcess() {
        let first = plan.commands(counters: [("cache_hits_total", 10)], gauges: [], mirrored: [:], nowMilliseconds: 1_000, tick: 1)
        #expect(first.commands.contains(["INCRBYFLOAT", "jarvis:metrics:cache_hits_total:i-1", "10"]))
        #expect(first.mirrored == ["cache_hits_total": 10])
        let second = plan.commands(counters: [("cache_hits_total", 15)], gauges: [], mirrored: first.mirrored, nowMilliseconds: 2_000, tick: 2)
        #expect(second.commands.contains(["INCRBYFLOAT", "jarvis:metrics:cache_hits_total:i-1", "5"]))
        // The cache worker restarted: its total starts again from 0 and now says 3.
        let third = plan.commands(counters: [("cache_hits_total", 3)], gauges: [], mirrored: second.mirrored, nowMilliseconds: 3_000, tick: 3)
        #expect(third.commands.contains(["INCRBYFLOAT", "jarvis:metrics:cache_hits_total:i-1", "3"]))
        #expect(third.commands.contains(["HSET", "jarvis:mirror:i-1", "cache_hits_total", "3"]), "the totals mirrored are kept in Redis too")
        let unchanged = plan.commands(counters: [("cache_hits_total", 3)], gauges: [], mirrored: third.mirrored, nowMilliseconds: 4_000, tick: 4)
        #expect(!unchanged.commands.contains { $0.first == "INCRBYFLOAT" })
    }

    /// Totals are kept per process: a worker that restarts and passes its old total before the
    /// mirror sees it (Redis was down meanwhile) still adds all it reports.
    @Test func aRestartedProcessAddsAllItReportsEvenPastItsOldTotal() {
        let first = plan.commands(processCounters: [("cache_hits_total", "1-100", 10), ("cache_hits_total", "2-200", 4)], gauges: [],
                                  mirrored: [:], nowMilliseconds: 1_000, tick: 1)
        #expect(first.commands.contains(["INCRBYFLOAT", "jarvis:metrics:cache_hits_total:i-1", "14"]))
        #expect(first.mirrored == ["cache_hits_total@1-100": 10, "cache_hits_total@2-200": 4])
        // pid 100 was replaced by pid 101, which has already counted 25 (more than the old 10);
        // pid 200 went on from 4 to 6.
        let second = plan.commands(processCounters: [("cache_hits_total", "1-101", 25), ("cache_hits_total", "2-200", 6)], gauges: [],
                                   mirrored: first.mirrored, nowMilliseconds: 2_000, tick: 2)
        #expect(second.commands.contains(["INCRBYFLOAT", "jarvis:metrics:cache_hits_total:i-1", "27"]), "25 new + 2 more")
        #expect(second.mirrored == ["cache_hits_total@1-101": 25, "cache_hits_total@2-200": 6], "the gone process is dropped")
        #expect(second.commands.contains(["DEL", "jarvis:mirror:i-1"]))
        let stored = second.commands.first { $0.first == "HSET" }
        #expect(stored == ["HSET", "jarvis:mirror:i-1", "cache_hits_total@1-101", "25", "cache_hits_total@2-200", "6"])
        let samples = second.commands.filter { $0.first == "ZADD" }.map { $0[3] }
        #expect(samples == ["2000:2:31"], "the time series shows the merged total")
        // Totals kept by an earlier version (merged, no process): continued from once.
        let upgraded = plan.commands(processCounters: [("cache_hits_total", "1-101", 25), ("cache_hits_total", "2-200", 6)], gauges: [],
                                     mirrored: ["cache_hits_total": 30], nowMilliseconds: 3_000, tick: 3)
        #expect(upgraded.commands.contains(["INCRBYFLOAT", "jarvis:metrics:cache_hits_total:i-1", "1"]))
        #expect(upgraded.mirrored == ["cache_hits_total@1-101": 25, "cache_hits_total@2-200": 6])
        // A tick without role 2's snapshot (a restarted metrics worker waiting for it): its
        // totals stay, so when it reports again nothing is added twice.
        let partial = plan.commands(processCounters: [("cache_hits_total", "1-101", 26)], gauges: [],
                                    mirrored: second.mirrored, nowMilliseconds: 4_000, tick: 4)
        #expect(partial.mirrored == ["cache_hits_total@1-101": 26, "cache_hits_total@2-200": 6])
        let back = plan.commands(processCounters: [("cache_hits_total", "1-101", 26), ("cache_hits_total", "2-200", 6)], gauges: [],
                                 mirrored: partial.mirrored, nowMilliseconds: 5_000, tick: 5)
        #expect(!back.commands.contains { $0.first == "INCRBYFLOAT" })
    }

    @Test func gaugesExpireAndEverySampleIsAUniqueMemberOfATrimmedSeries() {
        let a = plan.commands(counters: [], gauges: [("queue_size", 7)], mirrored: [:], nowMilliseconds: 5_000, tick: 1).commands
        let b = plan.commands(counters: [], gauges: [("queue_size", 7)], mirrored: [:], nowMilliseconds: 5_000, tick: 2).commands
        #expect(a.contains(["SET", "jarvis:metrics:queue_size:i-1", "7", "EX", "3600"]))
        let memberA = a.first { $0.first == "ZADD" }!
        let memberB = b.first { $0.first == "ZADD" }!
        #expect(memberA[1] == "jarvis:metrics:ts:queue_size:i-1" && memberA[2] == "5000")
        #expect(memberA[3] != memberB[3], "two equal samples are two members (the original system lost one)")
        #expect(a.contains(["ZREMRANGEBYRANK", "jarvis:metrics:ts:queue_size:i-1", "0", "-1001"]), "the last 1000 stay")
        #expect(a.contains(["SADD", "jarvis:instances", "i-1"]))
    }

    @Test func thePrefetchStatisticsAreOneJSONValue() throws {
        let commands = plan.commands(counters: [("prefetch_hits_total", 12)], gauges: [("prefetch_precision", 0.75), ("queue_size", 1)],
                                     mirrored: [:], nowMilliseconds: 1, tick: 1).commands
        let set = try #require(commands.first { $0.count > 1 && $0[1] == "jarvis:metrics:prefetch:i-1" })
        #expect(set == ["SET", "jarvis:metrics:prefetch:i-1", #"{"prefetch_hits_total":12,"prefetch_precision":0.75}"#, "EX", "3600"])
        let none = plan.commands(counters: [], gauges: [("queue_size", 1)], mirrored: [:], nowMilliseconds: 1, tick: 1).commands
        #expect(!none.contains { $0.count > 1 && $0[1].contains(":prefetch:") }, "nothing until the prefetcher reports")
    }

    @Test func seriesMergeProcessesAndNameLabels() {
        let registry = MetricsRegistry()
        registry.setCounter("queries_total", [("type", "verify")], to: 4)
        Timer(label: "write_latency_seconds", factory: VoxMetricsFactory(registry: registry)).recordNanoseconds(2_000_000)
        let snapshot = registry.snapshot(role: .cache, pid: 1, takenAt: 0)
        let (counters, _) = RedisMirrorPlan.series([snapshot, snapshot])
        let named = Dictionary(uniqueKeysWithValues: counters)
        #expect(named["queries_total{type=\"verify\"}"] == 8)
        #expect(named["write_latency_seconds_count"] == 2)
    }
}
