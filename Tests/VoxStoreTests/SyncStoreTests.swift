import Foundation
import Testing
import VoxCore
import VoxStore

/// The sync worker's side of the store: outbox bookkeeping, dead letters, applying remote rows.
@Suite struct SyncStoreTests {
    let path = NSTemporaryDirectory() + "voxsync-syncstore-\(UUID().uuidString).sqlite"
    var configuration: StoreConfiguration { StoreConfiguration(path: path, dimension: 2, origin: "instance-a") }

    func remote(_ id: String, version: UInt64, origin: String = "instance-b", deleted: Bool = false) -> ProfileRecord {
        var record = ProfileRecord(speakerID: id, embedding: [0, 1], metadata: "from \(origin)")
        record.version = version
        record.origin = origin
        record.updatedAt = 1
        record.deleted = deleted
        return record
    }

    @Test func aLocalWriteAfterAPulledNewerVersionStillComesOutNewest() throws {
        let profiles = try ProfileStore(configuration: configuration)
        let sync = try SyncStore(configuration: configuration)
        try profiles.put(ProfileRecord(speakerID: "alice", embedding: [1, 0]), now: 1_000)
        // Another instance's clock runs an hour ahead; its version arrives by pull.
        let ahead = UInt64(3_601_000) << 16
        #expect(try sync.applyRemote([remote("alice", version: ahead)], cursor: PullCursor()) == ["alice"])
        let local = try profiles.put(ProfileRecord(speakerID: "alice", embedding: [1, 1]), now: 2_000)
        #expect(local.version > ahead, "or last-writer-wins would undo the newer local write everywhere")
        #expect(try profiles.get("alice") == local, "the local write is the stored row")
        // The same for a write in a group commit behind others, and for a delete.
        #expect(try sync.applyRemote([remote("bob", version: ahead << 1), remote("carol", version: ahead << 2)], cursor: PullCursor()) == ["bob", "carol"])
        let batch = try profiles.putBatch([
            (ProfileRecord(speakerID: "dave", embedding: [1, 0]), nil),
            (ProfileRecord(speakerID: "bob", embedding: [1, 1]), nil),
        ], now: 3_000).map { try $0.get() }
        #expect(batch[1].version > ahead << 1 && batch[0].version < batch[1].version)
        #expect(try profiles.get("bob") == batch[1])
        let deleted = try profiles.delete("carol", now: 4_000)
        #expect(deleted.existed && deleted.version > ahead << 2, "past carol's pulled version, which the clock had not seen")
        #expect(try profiles.get("carol") == nil)
        #expect(try profiles.outboxCount() == 5, "every local write queued once")
    }

    @Test func remoteRowsApplyOnlyWhenNewerByVersionThenOrigin() throws {
        let profiles = try ProfileStore(configuration: configuration)
        let sync = try SyncStore(configuration: configuration)
        let mine = try profiles.put(ProfileRecord(speakerID: "bob", embedding: [1, 0]), now: 5_000)
        #expect(try sync.applyRemote([remote("bob", version: mine.version - 1)], cursor: PullCursor()).isEmpty, "older loses")
        #expect(try sync.applyRemote([remote("bob", version: mine.version, origin: "instance-0")], cursor: PullCursor()).isEmpty,
                "a tie goes to the larger origin in byte order, and instance-a > instance-0")
        #expect(try sync.applyRemote([remote("bob", version: mine.version, origin: "instance-z")], cursor: PullCursor()) == ["bob"])
        #expect(try profiles.get("bob")?.origin == "instance-z")
        #expect(try sync.applyRemote([remote("bob", version: mine.version + 1, deleted: true)], cursor: PullCursor()) == ["bob"])
        #expect(try profiles.get("bob") == nil, "a pulled tombstone deletes")
        #expect(try profiles.outboxCount() == 1, "pulled rows are not pushed back")
    }

    @Test func theCursorIsSavedWithTheRowsItCovers() throws {
        let sync = try SyncStore(configuration: configuration)
        var cursor = PullCursor()
        _ = cursor.nextPage(observedHorizon: 40)
        cursor.pageApplied(last: (12, "carol"), full: true)
        _ = try sync.applyRemote([remote("carol", version: 9)], cursor: cursor)
        #expect(try SyncStore(configuration: configuration).pullCursor() == cursor, "a restarted worker resumes inside the window")
    }

    /// A local row whose vectors no longer fit the store can never be pushed: it comes back as
    /// corrupt (the rest of its batch as usual) and goes to the dead letters with its outbox rows.
    @Test func anUnreadableLocalRowIsDeadLetteredInsteadOfBlockingItsBatch() throws {
        let profiles = try ProfileStore(configuration: configuration)
        let sync = try SyncStore(configuration: configuration)
        try profiles.put(ProfileRecord(speakerID: "erin", embedding: [1, 0]), now: 1)
        try profiles.put(ProfileRecord(speakerID: "finn", embedding: [0, 1]), now: 2)
        try SQLiteDatabase(path: path).execute("UPDATE profiles SET embedding = x'00' WHERE speaker_id = 'erin'")
        let (items, orphans, corrupt) = try sync.snapshot(OutboxPlanner().nextBatch(try sync.dueOutbox(now: 10, limit: 10)))
        #expect(items.map(\.record.speakerID) == ["finn"] && orphans.isEmpty)
        #expect(corrupt.map(\.speakerID) == ["erin"] && corrupt.first?.error.contains("corrupt row") == true)
        try sync.deadLetter(corrupt[0], now: 20)
        let letters = try sync.deadLetters(limit: 10)
        #expect(letters.total == 1 && letters.letters.first?.speakerID == "erin" && letters.letters.first?.error.hasPrefix("local row unreadable") == true)
        #expect(try sync.dueOutbox(now: 30, limit: 10).map(\.speakerID) == ["finn"], "erin's outbox rows went with it")
    }

    @Test func completingCoversOnlyTheRowsThatWereRead() throws {
        let profiles = try ProfileStore(configuration: configuration)
        let sync = try SyncStore(configuration: configuration)
        for x in 1...3 { try profiles.put(ProfileRecord(speakerID: "dave", embedding: [Float(x), 1]), now: Int64(x)) }
        let batch = OutboxPlanner().nextBatch(try sync.dueOutbox(now: 10, limit: 100))
        let (items, orphans, _) = try sync.snapshot(batch)
        #expect(items.count == 1 && orphans.isEmpty && items[0].record.embedding == [3, 1])
        try profiles.put(ProfileRecord(speakerID: "dave", embedding: [4, 1]), now: 4)  // written while the push runs
        try sync.complete(items.map { ($0.record.speakerID, $0.upTo) })
        #expect(try profiles.outboxCount() == 1, "the newer write stays queued")
    }

    @Test func refusedRowsWaitThenGoToTheDeadLettersAndCanBeRequeued() throws {
        let profiles = try ProfileStore(configuration: configuration)
        let sync = try SyncStore(configuration: configuration)
        try profiles.put(ProfileRecord(speakerID: "eve", embedding: [1, 1]), now: 1)
        let (items, _, _) = try sync.snapshot(OutboxPlanner().nextBatch(try sync.dueOutbox(now: 10, limit: 10)))
        try sync.reschedule(items[0], attempts: 1, nextAttemptAt: 500, error: "refused")
        #expect(try sync.dueOutbox(now: 499, limit: 10).isEmpty, "not due before its retry time")
        #expect(try sync.dueOutbox(now: 500, limit: 10).map(\.attempts) == [1])
        try sync.deadLetter(items[0], attempts: 5, error: "refused for good", now: 600)
        #expect(try profiles.outboxCount() == 0)
        let (letters, total) = try sync.deadLetters(limit: 10)
        #expect(total == 1 && letters[0].speakerID == "eve" && letters[0].attempts == 5 && letters[0].error == "refused for good")
        #expect(try sync.retryDeadLetters(id: letters[0].id, now: 700) == 1)
        #expect(try sync.dueOutbox(now: 700, limit: 10).map(\.attempts) == [0], "back with fresh attempts")
        #expect(try sync.deadLetters(limit: 10).total == 0)
    }
}
