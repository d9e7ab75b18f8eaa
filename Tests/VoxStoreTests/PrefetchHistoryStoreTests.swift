import Foundation
import Testing
import VoxStore

/// The prefetch worker's history file: batches in, time order out, bounded, kept across opens.
@Suite struct PrefetchHistoryStoreTests {
    let path = NSTemporaryDirectory() + "voxsync-prefetch-\(UUID().uuidString).sqlite"

    func accesses(_ speaker: String, at times: [Int64]) -> [PrefetchAccess] {
        times.map { PrefetchAccess(speaker: speaker, atMilliseconds: $0) }
    }

    @Test func accessesAndTheThresholdSurviveAReopenInTimeOrder() throws {
        do {
            let store = try PrefetchHistoryStore(path: path)
            #expect(try store.loadAll(limit: 100).isEmpty && store.loadThreshold() == nil && store.lastPrune() == nil)
            try store.append(accesses("bob", at: [3_000, 1_000]))
            try store.append(accesses("alice", at: [2_000]) + accesses("carol\u{0}x", at: [2_500]))
            try store.saveThreshold(0.8)
            try store.saveThreshold(0.75)
        }
        let reopened = try PrefetchHistoryStore(path: path)
        #expect(try reopened.loadAll(limit: 100) == [
            PrefetchAccess(speaker: "bob", atMilliseconds: 1_000), PrefetchAccess(speaker: "alice", atMilliseconds: 2_000),
            PrefetchAccess(speaker: "carol\u{0}x", atMilliseconds: 2_500), PrefetchAccess(speaker: "bob", atMilliseconds: 3_000),
        ])
        #expect(try reopened.loadAll(limit: 2).map(\.atMilliseconds) == [2_500, 3_000], "the most recent, oldest first")
        #expect(try reopened.loadThreshold() == 0.75)
        #expect(try reopened.count() == 4)
    }

    @Test func pruneBoundsTheHistoryByAgeThenByCount() throws {
        let store = try PrefetchHistoryStore(path: path)
        try store.append(accesses("a", at: Array(stride(from: 0, to: 10_000, by: 100))))  // 100 events, 0 … 9 900
        #expect(try store.prune(olderThan: 5_000, maxEvents: 1_000, now: 42) == 50, "everything before 5 000 goes")
        #expect(try store.count() == 50 && store.lastPrune() == 42)
        #expect(try store.prune(olderThan: 0, maxEvents: 20, now: 43) == 30, "then the oldest beyond 20")
        #expect(try store.loadAll(limit: 1_000).map(\.atMilliseconds) == Array(stride(from: 8_000, to: 10_000, by: 100)))
        #expect(try store.prune(olderThan: 0, maxEvents: 20, now: 44) == 0)
        let reopened = try PrefetchHistoryStore(path: path)
        #expect(try reopened.count() == 20 && reopened.lastPrune() == 44)

        // Rows stamped in the future (a clock that stepped back) go too.
        try reopened.append(accesses("b", at: [50_000, 60_000]))
        #expect(try reopened.prune(olderThan: 0, newerThan: 55_000, maxEvents: 1_000, now: 45) == 1)
        var streamed: [Int64] = []
        try reopened.forEach(limit: 1_000) { streamed.append($0.atMilliseconds) }
        #expect(streamed == Array(stride(from: 8_000, to: 10_000, by: 100)) + [50_000])
    }

    @Test func aStoreFromANewerBuildIsRefused() throws {
        do { _ = try PrefetchHistoryStore(path: path) }
        let raw = try SQLiteDatabase(path: path)
        try raw.execute("PRAGMA user_version = 99")
        let error = #expect(throws: StoreError.self) { try PrefetchHistoryStore(path: path) }
        #expect(error?.code == .incompatible && error?.message.contains("schema version 99") == true)
    }
}
