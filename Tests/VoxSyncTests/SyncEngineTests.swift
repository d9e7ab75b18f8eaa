import Foundation
import PostgresNIO
import Testing
import VoxCore
import VoxStore
@testable import VoxSync
import VoxTestSupport

/// The sync engine against the real PostgreSQL server `launch/test` starts.
/// Serialized: the out-of-order test holds a transaction open, which (by design) holds back every
/// pull on the server until it ends.
@Suite(.serialized, .enabled(if: TestPostgres.available, "needs VOXSYNC_TEST_POSTGRES_URL (launch/test sets it)"))
struct SyncEngineTests {
    @Test func thousandWritesDrainAndTheRemoteTableEqualsTheLocalOne() async throws {
        let url = try await TestPostgres.freshDatabase()
        let instance = try TestInstance(remoteURL: url, origin: "instance-a")
        for i in 0..<1000 {
            try instance.put("speaker-\(i)", seed: i, metadata: i % 7 == 0 ? "{\"note\": \"\(i) ü\"}" : "")
        }
        for i in stride(from: 0, to: 1000, by: 10) { _ = try instance.profiles.delete("speaker-\(i)", now: TestInstance.now()) }
        let report = await instance.engine.drain()
        #expect(!report.interrupted)
        #expect(report.pushed == 1000, "each speaker once: the 100 deletes coalesce with their enrolls")
        #expect(report.upserts == 20, "1000 speakers in batches of 50")
        #expect(try instance.outboxCount() == 0)
        let remote = try await instance.remote.allRows(timeout: .seconds(10))
        let local = try instance.rows()
        #expect(remote.count == 1000)
        #expect(remote.map { Comparable($0.record) } == local.map(Comparable.init), "field for field")
        #expect(remote.filter(\.record.deleted).count == 100)
    }

    @Test func hundredUpdatesOfOneSpeakerCostOneUpsert() async throws {
        let url = try await TestPostgres.freshDatabase()
        let instance = try TestInstance(remoteURL: url, origin: "instance-a")
        var last = ProfileRecord(speakerID: "", embedding: [])
        for seed in 0..<100 { last = try instance.put("alice", seed: seed) }
        #expect(try instance.outboxCount() == 100)
        let report = await instance.engine.drain()
        #expect(report.upserts == 1 && report.pushed == 1)
        #expect(try instance.outboxCount() == 0)
        let remote = try await instance.remote.allRows(timeout: .seconds(10))
        #expect(remote.map { Comparable($0.record) } == [Comparable(last)], "the newest version, not one of the 99 before it")
    }

    @Test func aLateOrRepeatedBatchNeverOverwritesNewerData() async throws {
        let url = try await TestPostgres.freshDatabase()
        let instance = try TestInstance(remoteURL: url, origin: "instance-a")
        var newer = TestInstance.profile("bob", seed: 2)
        newer.version = 2_000_000
        newer.origin = "instance-a"
        var older = TestInstance.profile("bob", seed: 1)
        older.version = 1_000_000
        older.origin = "instance-z"  // a larger origin must not win over a larger version
        try await instance.remote.migrate(timeout: .seconds(10))
        try await instance.remote.upsert([newer], dimension: TestInstance.dimension, model: ProfileRules.defaultModel, timeout: .seconds(10))
        try await instance.remote.upsert([older], dimension: TestInstance.dimension, model: ProfileRules.defaultModel, timeout: .seconds(10))
        try await instance.remote.upsert([older], dimension: TestInstance.dimension, model: ProfileRules.defaultModel, timeout: .seconds(10))
        let stored = try await instance.remote.allRows(timeout: .seconds(10))
        #expect(stored.map(\.record.version) == [2_000_000])
        // Equal versions: the origin breaks the tie, in byte order.
        var tie = newer
        tie.origin = "instance-b"
        tie.metadata = "tie"
        try await instance.remote.upsert([tie], dimension: TestInstance.dimension, model: ProfileRules.defaultModel, timeout: .seconds(10))
        let afterTie = try await instance.remote.allRows(timeout: .seconds(10))
        #expect(afterTie.map(\.record.metadata) == ["tie"])
    }

    @Test func aRefusedRowIsRetriedThenDeadLetteredWhileTheOthersSync() async throws {
        let url = try await TestPostgres.freshDatabase()
        var settings = SyncSettings()
        settings.maxRetryAttempts = 2
        settings.rowRetryBackoff = .init(initial: .milliseconds(300), maximum: .milliseconds(300), jitter: 0)
        let instance = try TestInstance(remoteURL: url, origin: "instance-a", settings: settings)
        try await instance.remote.migrate(timeout: .seconds(10))
        _ = try await TestPostgres.withClient(url) { client in
            try await client.query("ALTER TABLE voxsync_profiles ADD CONSTRAINT no_poison CHECK (speaker_id <> 'poison')", logger: TestPostgres.logger)
        }
        for i in 0..<5 { try instance.put("before-\(i)", seed: i) }
        try instance.put("poison", seed: 99)
        for i in 0..<5 { try instance.put("after-\(i)", seed: i) }

        // One batch (all eleven rows): a longer drain could reach poison's retry, 300 ms on,
        // on a machine slow enough to take that long over ten upserts.
        let first = await instance.engine.drain(maxBatches: 1)
        #expect(first.pushed == 10 && first.refused == 1 && !first.interrupted, "the rows behind the refused one still go")
        #expect(try instance.outboxCount() == 1, "poison waits for its retry")
        try await Task.sleep(for: .milliseconds(350))
        let second = await instance.engine.drain()
        #expect(second.refused == 1)
        #expect(try instance.outboxCount() == 0)
        let (letters, total) = try await instance.engine.deadLetters(limit: 10)
        #expect(total == 1)
        #expect(letters.first?.speakerID == "poison" && letters.first?.attempts == 2)
        #expect(letters.first?.error.contains("no_poison") == true, "the server's reason is kept: \(letters.first?.error ?? "")")
        let status = await instance.engine.status()
        #expect(status.deadLetters == 1 && status.circuitState == "closed", "a refused row is not an outage")

        // Fixed on the server: re-drive it.
        _ = try await TestPostgres.withClient(url) { client in
            try await client.query("ALTER TABLE voxsync_profiles DROP CONSTRAINT no_poison", logger: TestPostgres.logger)
        }
        #expect(try await instance.engine.retryDeadLetters(id: nil) == 1)
        let third = await instance.engine.drain()
        #expect(third.pushed == 1)
        let remote = try await instance.remote.allRows(timeout: .seconds(10))
        #expect(remote.count == 11)
        #expect(try await instance.engine.deadLetters(limit: 10).total == 0)
    }

    @Test func anUnreachableServerOpensTheBreakerAndTheQueueWaits() async throws {
        // Nothing listens on port 9 of loopback: every connection attempt is refused at once.
        let url = try PostgresURL(parsing: "postgres://postgres@127.0.0.1:9/none?sslmode=disable")
        var settings = SyncSettings()
        settings.breaker = .init(failureThreshold: 3, initialBreak: .seconds(30))
        settings.remoteTimeout = .seconds(2)
        let instance = try TestInstance(remoteURL: url, origin: "instance-a", settings: settings)
        try instance.put("carol", seed: 1)
        for _ in 0..<3 {
            let report = await instance.engine.drain()
            #expect(report.interrupted && report.pushed == 0)
        }
        let status = await instance.engine.status()
        #expect(status.circuitState == "open" && status.circuitOpenings == 1)
        #expect(status.queueSize == 1 && status.failuresTotal == 3)
        #expect(!status.lastError.isEmpty)
        // Open: the next drain does not even try.
        let refused = await instance.engine.drain()
        #expect(refused.interrupted)
        #expect(await instance.engine.status().failuresTotal == 3)
        #expect(try instance.outboxCount() == 1, "nothing lost")
    }

    @Test func twoInstancesConvergeOnTheSameWinnerForEverySpeaker() async throws {
        let url = try await TestPostgres.freshDatabase()
        let a = try TestInstance(remoteURL: url, origin: "instance-a")
        let b = try TestInstance(remoteURL: url, origin: "instance-b")
        for round in 0..<5 {
            for i in 0..<40 {
                // Both edit every speaker, in both orders, with cycles in between.
                if (i + round) % 2 == 0 { try a.put("s\(i)", seed: round * 100 + i) }
                if (i + round) % 3 != 0 { try b.put("s\(i)", seed: round * 1000 + i) }
            }
            if round == 2 { _ = try a.profiles.delete("s7", now: TestInstance.now()) }
            _ = await a.engine.cycle()
            _ = await b.engine.cycle()
        }
        for _ in 0..<2 {
            _ = await a.engine.cycle()
            _ = await b.engine.cycle()
        }
        let remote = try await a.remote.allRows(timeout: .seconds(10)).map { Comparable($0.record) }
        let localA = try a.rows().map(Comparable.init)
        let localB = try b.rows().map(Comparable.init)
        #expect(remote.count == 40)
        #expect(localA == remote)
        #expect(localB == remote)
        #expect(Set(remote.map(\.origin)) == ["instance-a", "instance-b"], "both won some")
        #expect(!a.invalidated.isEmpty && !b.invalidated.isEmpty, "each told its cache what changed")
    }

    @Test func aChangeCommittedOutOfOrderIsStillPulled() async throws {
        let url = try await TestPostgres.freshDatabase()
        let reader = try TestInstance(remoteURL: url, origin: "reader")
        try await reader.remote.migrate(timeout: .seconds(10))
        let held = AsyncStreamPair()
        _ = try await TestPostgres.withClient(url) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Writer A: begins first (takes the smaller transaction id), commits last.
                group.addTask {
                    try await client.withConnection { connection in
                        try await connection.query("BEGIN", logger: TestPostgres.logger)
                        try await connection.query(Self.insert("early", seed: 1), logger: TestPostgres.logger)
                        held.signalStarted()
                        await held.waitForRelease()
                        try await connection.query("COMMIT", logger: TestPostgres.logger)
                    }
                }
                await held.waitForStart()
                // Writer B: a later transaction, committed while A is still open.
                try await client.query(Self.insert("late", seed: 2), logger: TestPostgres.logger)
                let whileOpen = await reader.engine.pull()
                #expect(whileOpen == 0, "nothing is read past a transaction still running")
                held.release()
                try await group.waitForAll()
            }
        }
        let afterCommit = await reader.engine.pull()
        #expect(afterCommit == 2)
        #expect(try reader.rows().map(\.speakerID) == ["early", "late"], "the early-begun, late-committed row was not skipped")
        #expect(Set(reader.invalidated) == ["early", "late"])
    }

    @Test func aRemoteRowThatBreaksTheRulesIsSkippedAndTheFeedGoesOn() async throws {
        let url = try await TestPostgres.freshDatabase()
        let reader = try TestInstance(remoteURL: url, origin: "reader")
        var wrongDimension = TestInstance.profile("wrong", seed: 1)
        wrongDimension.embedding = [1, 2, 3]
        wrongDimension.version = 5
        wrongDimension.origin = "elsewhere"
        var good = TestInstance.profile("good", seed: 2)
        good.version = 6
        good.origin = "elsewhere"
        var nonFinite = TestInstance.profile("nan", seed: 3)
        nonFinite.embedding[0] = .nan
        nonFinite.version = 7
        nonFinite.origin = "elsewhere"
        try await reader.remote.migrate(timeout: .seconds(10))
        try await reader.remote.upsert([wrongDimension, good, nonFinite], dimension: TestInstance.dimension, model: ProfileRules.defaultModel, timeout: .seconds(10))
        var otherModel = TestInstance.profile("other-model", seed: 4)
        otherModel.version = 8
        otherModel.origin = "elsewhere"
        try await reader.remote.upsert([otherModel], dimension: TestInstance.dimension, model: "wavlm-base-plus", timeout: .seconds(10))
        let pulled = await reader.engine.pull()
        #expect(pulled == 1)
        #expect(try reader.rows().map(\.speakerID) == ["good"])
    }
}

extension SyncEngineTests {
    /// An insert as another instance ("writer") would make it.
    static func insert(_ id: String, seed: Int) -> PostgresQuery {
        let record = TestInstance.profile(id, seed: seed)
        let embedding = RemoteStore.buffer(record.embedding)
        let empty = ByteBuffer()
        let version = Int64(TestInstance.now() << 16)
        return """
            INSERT INTO voxsync_profiles (speaker_id, embedding, samples, threshold, metadata, version, origin, updated_at, deleted, dimension)
            VALUES (\(id), \(embedding), \(empty), 0.3, '', \(version), 'writer', 0, false, \(Int32(TestInstance.dimension)))
            """
    }
}

/// Lets a test hold writer A's transaction open while it does other things.
final class AsyncStreamPair: @unchecked Sendable {
    private let started: AsyncStream<Void>
    private let startedContinuation: AsyncStream<Void>.Continuation
    private let released: AsyncStream<Void>
    private let releasedContinuation: AsyncStream<Void>.Continuation

    init() {
        (started, startedContinuation) = AsyncStream.makeStream()
        (released, releasedContinuation) = AsyncStream.makeStream()
    }

    func signalStarted() { startedContinuation.yield() }
    func waitForStart() async { for await _ in started { return } }
    func release() { releasedContinuation.yield() }
    func waitForRelease() async { for await _ in released { return } }
}
