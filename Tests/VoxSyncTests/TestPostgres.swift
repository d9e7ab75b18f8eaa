import Foundation
import Logging
import PostgresNIO
import VoxCore
import VoxStore
import VoxSync
import VoxTestSupport

/// One instance's local side: a data directory with its store, written the way the cache
/// worker writes, and the sync engine over it.
final class TestInstance: @unchecked Sendable {
    let directory: String
    let origin: String
    let profiles: ProfileStore
    let engine: SyncEngine
    let remote: RemoteStore
    private let changes = ChangedBox()
    /// The remote's connection pool, running for the instance's life (postgres-nio's
    /// `PostgresClient.run()` may be called only once).
    private let pool: Task<Void, Never>
    static let dimension = 8

    init(remoteURL: PostgresURL, origin: String, settings: SyncSettings = .init()) throws {
        directory = NSTemporaryDirectory() + "voxsync-synctest-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.origin = origin
        var configuration = StoreConfiguration(path: directory + "/voxsync.sqlite", dimension: Self.dimension, origin: origin)
        // These tests write on the cooperative pool (2 threads here): no fsync per write, or a
        // test of 1000 writes would hold a thread for seconds and starve every other suite.
        configuration.synchronousFull = false
        profiles = try ProfileStore(configuration: configuration)
        remote = RemoteStore(url: remoteURL, poolSize: 2, logger: TestPostgres.logger)
        let remote = self.remote
        pool = Task { await remote.run() }
        let changes = self.changes
        engine = SyncEngine(store: try SyncStore(configuration: configuration), remote: remote, settings: settings, logger: TestPostgres.logger) { changed in
            changes.append(changed)
        }
    }

    /// Speakers the engine told the cache to reload.
    var invalidated: [String] { changes.all }

    /// A local read of every row, tombstones included.
    func rows() throws -> [ProfileRecord] {
        try SyncStore(configuration: profiles.configuration).allRows()
    }

    func outboxCount() throws -> Int { try profiles.outboxCount() }

    @discardableResult
    func put(_ id: String, seed: Int, metadata: String = "") throws -> ProfileRecord {
        try profiles.put(Self.profile(id, seed: seed, metadata: metadata), now: Self.now())
    }

    static func profile(_ id: String, seed: Int, metadata: String = "") -> ProfileRecord {
        let embedding = (0..<dimension).map { Float(sin(Double(seed * dimension + $0)) + 1.5) }
        let sample = embedding.map { $0 * 0.5 + 0.1 }
        return ProfileRecord(speakerID: id, embedding: embedding, samples: seed % 2 == 0 ? [sample] : [], threshold: 0.3, metadata: metadata)
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    deinit {
        pool.cancel()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

final class ChangedBox: @unchecked Sendable {
    private let lock = NSLock()
    private var changed: [String] = []
    func append(_ ids: [String]) { lock.withLock { changed += ids } }
    var all: [String] { lock.withLock { changed } }
}

/// The fields that must match between a local and a remote row.
struct Comparable: Equatable, CustomStringConvertible {
    var id: String, embedding: [Float], samples: [[Float]], threshold: Float, metadata: String
    var version: UInt64, origin: String, updatedAt: Int64, deleted: Bool

    init(_ record: ProfileRecord) {
        id = record.speakerID
        embedding = record.embedding
        samples = record.samples
        threshold = record.threshold
        metadata = record.metadata
        version = record.version
        origin = record.origin
        updatedAt = record.updatedAt
        deleted = record.deleted
    }

    var description: String { "\(id) v\(version) \(origin)\(deleted ? " deleted" : "")" }
}
