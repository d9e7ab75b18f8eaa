import VoxTestSupport
import Testing
import VoxCore
@testable import VoxPrefetch

@Suite struct ReplayPolicyTests {
    @Test func lruEvictsTheLeastRecentlyUsed() {
        var lru = LRUCachePolicy(capacity: 2)
        var answers: [String?] = []
        answers.append(lru.insert("a"))
        answers.append(lru.insert("b"))
        let readA = lru.access("a")
        answers.append(lru.insert("c"))
        let readB = lru.access("b"), readA2 = lru.access("a"), readC = lru.access("c")
        answers.append(lru.insert("d"))
        #expect(answers == [nil, nil, "b", "a"])
        #expect(readA && !readB && readA2 && readC)
    }

    /// Belady's optimum is at least as good as LRU and SIEVE on any trace (checked on random
    /// ones), and with a cache as big as the speakers misses only first reads.
    @Test func beladyBoundsTheDemandPolicies() async {
        typealias Runs = (bounded: [(optimum: Int, lru: Int, sieve: Int)], whole: [(optimum: Int, firstReadsOnly: Int)])
        let runs = await offCooperativePool { () -> Runs in
            var rng = SeededGenerator(seed: 5)
            var runs: Runs = ([], [])
            for _ in 0..<20 {
                let trace = (0..<400).map { TraceAccess(time: Int64($0), speaker: "s\(Int(rng.unit() * rng.unit() * 30))") }
                let replay = TraceReplay(trace: trace, measureFrom: 0)
                for capacity in [1, 3, 8] {
                    runs.bounded.append((replay.belady(capacity: capacity).hits, replay.run(LRUCachePolicy.self, capacity: capacity).hits,
                                         replay.run(SieveCachePolicy<String>.self, capacity: capacity).hits))
                }
                let distinct = Set(trace.map(\.speaker)).count
                runs.whole.append((replay.belady(capacity: distinct).hits, trace.count - distinct))
            }
            return runs
        }
        #expect(runs.bounded.count == 60 && runs.whole.count == 20)
        for run in runs.bounded { #expect(run.optimum >= run.lru && run.optimum >= run.sieve) }
        for run in runs.whole { #expect(run.optimum == run.firstReadsOnly) }
    }

    /// A prefetched entry waits for its read: admitted with turns to spare it outlives a run of
    /// one-time misses that evicts a plainly admitted entry.
    @Test func sievePrefetchedEntriesOutliveOneTimeMisses() {
        var plain = SieveCachePolicy<String>(capacity: 4)
        var prefetched = SieveCachePolicy<String>(capacity: 4)
        _ = plain.insert("wanted")
        _ = prefetched.insertPrefetched("wanted")
        for index in 0..<8 {
            _ = plain.insert("scan\(index)")
            _ = prefetched.insert("scan\(index)")
        }
        #expect(!plain.contains("wanted"))
        #expect(prefetched.contains("wanted"))
    }
}

@Suite struct OfficeReplayTests {
    @Test func theWorkloadIsDeterministicAndHasWeekends() {
        var configuration = OfficeWorkload.Configuration()
        configuration.speakers = 40
        configuration.days = 7
        let first = OfficeWorkload(configuration: configuration).generate()
        #expect(first == OfficeWorkload(configuration: configuration).generate())
        #expect(zip(first, first.dropFirst()).allSatisfy { $0.time <= $1.time })
        let perDay = Dictionary(grouping: first) { ($0.time - OfficeWorkload.start) / 86_400_000 }.mapValues(\.count)
        #expect(perDay[5, default: 0] * 3 < perDay[0, default: 0])
        #expect(perDay[6, default: 0] * 3 < perDay[1, default: 0])
        configuration.seed = 43
        #expect(OfficeWorkload(configuration: configuration).generate() != first)
    }

    /// A small office (60 speakers, two weeks; the second counted): prefetching into the same
    /// cache adds hits, most of what it loads is read, and it passes no miss it did not cause.
    @Test func prefetchAddsHitsOnTheOffice() async {
        let (alone, helped) = await offCooperativePool { () -> (TraceReplay.Result, TraceReplay.Result) in
            var configuration = OfficeWorkload.Configuration()
            configuration.speakers = 60
            configuration.days = 14
            let trace = OfficeWorkload(configuration: configuration).generate()
            let replay = TraceReplay(trace: trace, measureFrom: OfficeWorkload.start + 7 * 86_400_000)
            return (replay.run(SieveCachePolicy<String>.self, capacity: 6),
                    replay.run(SieveCachePolicy<String>.self, capacity: 6, prefetch: TraceReplay.Prefetch()))
        }
        #expect(helped.reads == alone.reads)
        #expect(helped.hitRate > alone.hitRate + 0.1)
        #expect((helped.precision ?? 0) > 0.6)
        #expect(helped.used <= helped.prefetched)
    }
}

@Suite struct TraceCSVTests {
    @Test func parsesAndSorts() throws {
        let text = "\u{FEFF}timestamp,speaker\n1704067260.5,bob\n# a comment\n\n1704067200,alice\r\n"
        let trace = try TraceCSV.parse(text)
        #expect(trace == [TraceAccess(time: 1_704_067_200_000, speaker: "alice"), TraceAccess(time: 1_704_067_260_500, speaker: "bob")])
    }

    @Test func namesTheLineAndTheProblem() {
        #expect(throws: TraceCSV.ParseError(line: 2, reason: "expected 2 fields 'timestamp,speaker', found 3")) {
            try TraceCSV.parse("1,a\n2,b,c\n")
        }
        #expect(throws: TraceCSV.ParseError(line: 1, reason: "timestamp 'yesterday' is not unix seconds between 1970 and 2100")) {
            try TraceCSV.parse("yesterday,a\n")
        }
        #expect(throws: TraceCSV.ParseError.self) { try TraceCSV.parse("1,\n") }
        #expect(throws: TraceCSV.ParseError.self) { try TraceCSV.parse("1,a\u{7}b\n") }
    }
}
