import Foundation
import Testing
import VoxCore
@testable import VoxStore

@Suite struct ProfileStoreTests {
    let path = NSTemporaryDirectory() + "voxsync-store-\(UUID().uuidString).sqlite"

    func open(dimension: Int = 4, model: String = "test-model") throws -> ProfileStore {
        try ProfileStore(configuration: StoreConfiguration(path: path, dimension: dimension, model: model, origin: "instance-a"))
    }

    func alice(_ x: Float = 1) -> ProfileRecord {
        ProfileRecord(speakerID: "alice", embedding: [x, 0, 0, 0], samples: [[0, 1, 0, 0], [0, 0, 1, 0]], threshold: 0.3, metadata: #"{"room":"kitchen"}"#)
    }

    @Test func putThenGetRoundTripsEveryField() throws {
        let store = try open()
        let stored = try store.put(alice(), now: 1_000)
        let read = try #require(try store.get("alice"))
        #expect(read == stored)
        #expect(read.samples == [[0, 1, 0, 0], [0, 0, 1, 0]])
        #expect(read.threshold == 0.3 && read.metadata == #"{"room":"kitchen"}"#)
        #expect(read.origin == "instance-a" && read.updatedAt == 1_000)
        #expect(HybridLogicalClock.milliseconds(of: read.version) == 1_000)
        #expect(try store.outboxCount() == 1)
    }

    /// `sqlite_synchronous` and `embedding_model` reach the store as configured.
    @Test func theStoreIsOpenedAsConfigured() throws {
        var configuration = VoxsyncConfiguration()
        configuration.dataDirectory = NSTemporaryDirectory() + "voxsync-store-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: configuration.dataDirectory) }
        let full = try ProfileStore(configuration: StoreConfiguration(configuration, origin: "a"))
        #expect(try full.database.integer("PRAGMA synchronous") == 2, "FULL by default")
        #expect(full.rules.model == "ecapa-tdnn-192" && full.configuration.path == configuration.dataDirectory + "/voxsync.sqlite")
        configuration.sqliteSynchronous = "normal"
        let normal = try ProfileStore(configuration: StoreConfiguration(configuration, origin: "a"))
        #expect(try normal.database.integer("PRAGMA synchronous") == 1)
        configuration.embeddingModel = "wavlm-base-plus"
        let error = #expect(throws: StoreError.self) { try ProfileStore(configuration: StoreConfiguration(configuration, origin: "a")) }
        #expect(error?.message.contains("of model 'ecapa-tdnn-192', not 'wavlm-base-plus'") == true, "the model is fixed when the store is created")
    }

    @Test func everyWriteGetsANewerVersionAndAnOutboxRow() throws {
        let store = try open()
        let first = try store.put(alice(1), now: 5_000)
        let second = try store.put(alice(2), now: 4_000)  // the wall clock stepped back
        #expect(second.version > first.version)
        #expect(try store.get("alice")?.embedding == [2, 0, 0, 0])
        #expect(try store.outboxCount() == 2)
    }

    @Test func aGroupCommitKeepsGoodWritesAndRefusesBadOnesEachOnItsOwn() throws {
        let store = try open()
        let existing = try store.put(alice(), now: 1)
        let results = try store.putBatch([
            (ProfileRecord(speakerID: "bob", embedding: [0, 1, 0, 0]), nil),
            (ProfileRecord(speakerID: "bad", embedding: [0, 0, 0]), nil),              // wrong dimension
            (alice(5), existing.version + 1),                                          // conflict
            (ProfileRecord(speakerID: "carol", embedding: [0, 0, 1, 0]), 0),
            (alice(6), existing.version),                                              // conditional, right version
        ], now: 2)
        #expect(results.map { (try? $0.get()) != nil } == [true, false, false, true, true])
        guard case .failure(let wrong) = results[1], case .invalid(let violation) = wrong.code else {
            Issue.record("expected a validation failure")
            return
        }
        #expect(violation.kind == .dimensionMismatch)
        guard case .failure(let conflict) = results[2] else { return }
        #expect(conflict.code == .conflict)
        #expect(try store.get("alice")?.embedding == [6, 0, 0, 0])
        #expect(try store.list(prefix: "", limit: 10) == ["alice", "bob", "carol"])
        #expect(try store.outboxCount() == 4, "one outbox row per committed write, none for the refused")
        let versions = results.compactMap { try? $0.get().version }
        #expect(versions == versions.sorted() && Set(versions).count == 3)
    }

    @Test func conditionalWrites() throws {
        let store = try open()
        let created = try store.put(alice(), expectedVersion: 0, now: 1)
        let conflict = #expect(throws: StoreError.self) { try store.put(alice(), expectedVersion: 0, now: 2) }
        #expect(conflict?.code == .conflict)
        #expect(conflict?.message.contains("is at version \(created.version)") == true)
        let updated = try store.put(alice(3), expectedVersion: created.version, now: 3)
        #expect(updated.version > created.version)
        #expect(try store.outboxCount() == 2, "the refused write queued nothing")
    }

    @Test func invalidProfilesWriteNothing() throws {
        let store = try open()
        for bad in [
            ProfileRecord(speakerID: "", embedding: [1, 0, 0, 0]),
            ProfileRecord(speakerID: "bob", embedding: [1, 0, 0]),
            ProfileRecord(speakerID: "bob", embedding: [0, 0, 0, 0]),
            ProfileRecord(speakerID: "bob", embedding: [1, 0, 0, 0], samples: [[1, .nan, 0, 0]]),
            ProfileRecord(speakerID: "bob", embedding: [1, 0, 0, 0], threshold: 2),
            ProfileRecord(speakerID: "bob", embedding: [1, 0, 0, 0], metadata: String(repeating: "m", count: 70_000)),
        ] {
            let error = #expect(throws: StoreError.self) { try store.put(bad, now: 1) }
            guard case .invalid? = error?.code else {
                Issue.record("expected a validation error, got \(String(describing: error))")
                continue
            }
        }
        #expect(try store.get("bob") == nil)
        #expect(try store.outboxCount() == 0)
    }

    @Test func aWriteThatFailsHalfwayLeavesNeitherProfileNorOutboxRow() throws {
        let store = try open()
        // Break the second half of the transaction: the outbox insert will fail.
        let saboteur = try SQLiteDatabase(path: path)
        try saboteur.execute("CREATE TRIGGER refuse BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'outbox refused'); END")
        let error = #expect(throws: StoreError.self) { try store.put(alice(), now: 1) }
        #expect(error?.message.contains("outbox refused") == true)
        #expect(try store.get("alice") == nil, "the profile row was rolled back with the outbox row")
        try saboteur.execute("DROP TRIGGER refuse")
        try store.put(alice(), now: 2)
        #expect(try store.get("alice") != nil)
    }

    @Test func deleteWritesATombstone() throws {
        let store = try open()
        let created = try store.put(alice(), now: 1)
        let deleted = try store.delete("alice", now: 2)
        #expect(deleted.existed && deleted.version > created.version)
        #expect(try store.get("alice") == nil)
        #expect(try store.list(prefix: "", limit: 10) == [])
        #expect(try store.outboxCount() == 2, "the tombstone is synced too")
        #expect(try store.delete("nobody", now: 3).existed == false)
        #expect(try store.delete("alice", now: 3).existed == false, "already deleted")
        #expect(try store.outboxCount() == 2, "deleting what is not there writes nothing")
        // Re-enrolling after a delete works, conditionally on "does not exist" too.
        #expect(try store.put(alice(), expectedVersion: 0, now: 4).deleted == false)
    }

    @Test func listPagesByPrefix() throws {
        let store = try open()
        for id in ["anna", "alice", "bob", "alex", "al"] {
            try store.put(ProfileRecord(speakerID: id, embedding: [1, 0, 0, 0]), now: 1)
        }
        #expect(try store.list(prefix: "al", limit: 2) == ["al", "alex"])
        #expect(try store.list(prefix: "al", after: "alex", limit: 2) == ["alice"])
        #expect(try store.list(prefix: "", limit: 10) == ["al", "alex", "alice", "anna", "bob"])
        #expect(try store.list(prefix: "z", limit: 10) == [])
    }

    @Test func reopeningKeepsDataAndKeepsVersionsIncreasing() throws {
        var last: UInt64 = 0
        do {
            let store = try open()
            last = try store.put(alice(), now: 9_000).version
        }
        let reopened = try open()
        #expect(try reopened.get("alice")?.version == last)
        // Even with a wall clock far behind, the next version is newer than what is stored.
        #expect(try reopened.put(alice(2), now: 10).version > last)
    }

    @Test func aStoreForOtherEmbeddingsIsRefused() throws {
        _ = try open(dimension: 4)
        let dimension = #expect(throws: StoreError.self) { try open(dimension: 192) }
        #expect(dimension?.code == .incompatible)
        #expect(dimension?.message.contains("4-dimensional embeddings, not 192") == true)
        let model = #expect(throws: StoreError.self) { try open(dimension: 4, model: "other") }
        #expect(model?.message.contains("model 'test-model'") == true)
    }

    @Test func textWithNULAndSampleFreeProfilesRoundTrip() throws {
        let store = try open()
        try store.put(ProfileRecord(speakerID: "nul", embedding: [1, 0, 0, 0], metadata: "a\u{0}b"), now: 1)
        #expect(try store.get("nul")?.metadata == "a\u{0}b")
        #expect(try store.get("nul")?.samples == [])
    }

    @Test func listUsesThePrefixAsARangeAndStaysExact() throws {
        let store = try open()
        for id in ["a", "ab", "abc", "abd", "ac", "b", "ab\u{10FFFF}"] {
            try store.put(ProfileRecord(speakerID: id, embedding: [1, 0, 0, 0]), now: 1)
        }
        #expect(try store.list(prefix: "ab", limit: 10) == ["ab", "abc", "abd", "ab\u{10FFFF}"])
    }

    /// A store made by the first schema (profiles WITHOUT ROWID, outbox AUTOINCREMENT) opens
    /// under the current one with every row, tombstone, access time and outbox row intact,
    /// and takes new writes with versions and outbox ids above the old ones.
    @Test func aStoreOfTheFirstSchemaIsMigratedWithEveryRowKept() throws {
        let old = try SQLiteDatabase(path: path)
        try Schema.migrate(old, migrations: Array(Schema.migrations.prefix(1)))
        #expect(try old.integer("PRAGMA user_version") == 1)
        try old.execute("""
            INSERT INTO meta VALUES ('embedding_dimension', '4'), ('embedding_model', 'test-model');
            INSERT INTO profiles (speaker_id, embedding, samples, threshold, metadata, version, origin, updated_at, deleted, last_access)
            VALUES ('alice', x'0000803F000000000000000000000000', x'', 0.3, 'm', 100, 'instance-a', 10, 0, 55),
                   ('bob', x'000000000000803F0000000000000000', x'', 0, '', 200, 'instance-b', 20, 1, 0);
            INSERT INTO outbox (speaker_id, version, enqueued_at) VALUES ('alice', 100, 10);
            INSERT INTO outbox (speaker_id, version, enqueued_at, attempts, next_attempt_at, last_error)
            VALUES ('bob', 200, 20, 3, 9999, 'timeout');
            """)
        let store = try open()
        let migrated = try SQLiteDatabase(path: path)
        #expect(try migrated.integer("PRAGMA user_version") == Schema.currentVersion)
        #expect(try migrated.integer("SELECT count(*) FROM sqlite_master WHERE name = 'profiles' AND sql LIKE '%WITHOUT ROWID%'") == 0)
        #expect(try migrated.integer("SELECT count(*) FROM sqlite_master WHERE name = 'profiles_new' OR name = 'outbox_new'") == 0)
        #expect(try store.get("alice")?.embedding == [1, 0, 0, 0])
        #expect(try store.get("alice")?.version == 100 && store.get("alice")?.metadata == "m")
        #expect(try store.get("bob") == nil, "a tombstone stays a tombstone")
        #expect(try store.lastAccess(of: "alice") == 55)
        #expect(try migrated.integer("SELECT group_concat(id || ':' || speaker_id, ',') = '1:alice,2:bob' FROM outbox") == 1)
        #expect(try migrated.integer("SELECT attempts = 3 AND next_attempt_at = 9999 AND last_error = 'timeout' FROM outbox WHERE id = 2") == 1,
                "a row waiting for its retry keeps its schedule")
        #expect(try migrated.integer("SELECT count(*) FROM sqlite_master WHERE name = 'outbox' AND sql LIKE '%AUTOINCREMENT%'") == 0)
        #expect(try migrated.integer("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'outbox_speaker' AND tbl_name = 'outbox'") == 1)
        #expect(try migrated.integer("SELECT count(*) FROM pragma_index_list('profiles') WHERE \"unique\" = 1") == 1, "speaker ids stay unique")

        let written = try store.put(ProfileRecord(speakerID: "bob", embedding: [0, 0, 1, 0]), now: 30)
        #expect(written.version > 200, "the clock starts above the migrated versions")
        #expect(try migrated.integer("SELECT max(id) FROM outbox WHERE speaker_id = 'bob'") == 3)
        #expect(try store.list(prefix: "", limit: 10) == ["alice", "bob"])
    }

    @Test func aNewerSchemaIsRefused() throws {
        _ = try open()
        try SQLiteDatabase(path: path).execute("PRAGMA user_version = 99")
        let error = #expect(throws: StoreError.self) { try open() }
        #expect(error?.message.contains("schema version 99") == true)
    }

    // MARK: Preload and access times

    @Test func forEachLiveReadsEveryLiveRowWithItsEmbeddingInPlace() throws {
        let store = try open()
        try store.put(alice(), now: 1)
        try store.put(ProfileRecord(speakerID: "bob", embedding: [0, -2.5, Float.leastNormalMagnitude / 1024, 3]), now: 2)
        try store.put(ProfileRecord(speakerID: "gone", embedding: [1, 1, 1, 1]), now: 3)
        _ = try store.delete("gone", now: 4)
        var seen: [String: (embedding: [Float], record: ProfileRecord)] = [:]
        try withUnsafeTemporaryAllocation(of: Float.self, capacity: 4) { scratch in
            try store.forEachLive { row throws(StoreError) in
                guard let embedding = row.embedding(into: scratch) else {
                    Issue.record("no embedding for \(row.speakerID)")
                    return
                }
                seen[row.speakerID] = (Array(embedding), try row.record(embedding: false))
            }
        }
        #expect(seen.keys.sorted() == ["alice", "bob"], "tombstones are not preloaded")
        #expect(seen["bob"]?.embedding.map(\.bitPattern) == ([0, -2.5, Float.leastNormalMagnitude / 1024, 3] as [Float]).map(\.bitPattern))
        #expect(seen["alice"]?.record.samples == alice().samples)
        #expect(seen["alice"]?.record.embedding == [], "left to the caller, who read it in place")
        #expect(seen["alice"]?.record.threshold == 0.3)
    }

    @Test func accessTimesAreRecordedWithoutANewVersionOrOutboxRowAndNeverMoveBack() throws {
        let store = try open()
        let stored = try store.put(alice(), now: 1)
        try store.recordAccess([(speakerID: "alice", at: 500), (speakerID: "nobody", at: 500)])
        #expect(try store.lastAccess(of: "alice") == 500)
        try store.recordAccess([(speakerID: "alice", at: 300)])
        #expect(try store.lastAccess(of: "alice") == 500, "an older time does not overwrite a newer one")
        #expect(try store.get("alice") == stored, "same version, same row")
        #expect(try store.outboxCount() == 1, "access times are local: nothing to sync")
        #expect(try store.list(prefix: "", limit: 10) == ["alice"], "unknown speakers are skipped, not created")
        var lastAccess: [String: Int64] = [:]
        try store.forEachLive { row throws(StoreError) in lastAccess[row.speakerID] = row.lastAccess }
        #expect(lastAccess == ["alice": 500])
    }

    @Test func preparedStatementsAreReusedAcrossManyWritesAndReads() throws {
        let store = try open()
        for round in 0..<3 {
            let results = try store.putBatch((0..<50).map { (ProfileRecord(speakerID: "s\($0)", embedding: [Float(round + 1), 0, 0, 1]), nil) }, now: Int64(round))
            #expect(results.allSatisfy { (try? $0.get()) != nil })
            for index in 0..<50 { #expect(try store.get("s\(index)")?.embedding == [Float(round + 1), 0, 0, 1]) }
        }
        #expect(try store.outboxCount() == 150)
    }
}
