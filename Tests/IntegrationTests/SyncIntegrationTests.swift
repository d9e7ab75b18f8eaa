import Foundation
import Testing
import VoxClient
import VoxCore
import VoxStore
import VoxSync
import VoxTestSupport
import VoxTransport
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// Write-behind sync end to end: real supervisors and workers, real PostgreSQL, real kills.
extension ServiceTests {
    @Suite(.serialized, .enabled(if: TestPostgres.available, "needs VOXSYNC_TEST_POSTGRES_URL (launch/test sets it)"))
    struct SyncIntegrationTests {
        static let dimension = 192

        static func profile(_ id: String, seed: Int) -> Voxsync_V1_PutRequest {
            var put = Voxsync_V1_PutRequest()
            put.profile.speakerID = id
            put.profile.embedding.values = (0..<dimension).map { Float(sin(Double(seed * 31 + $0))) + 1.1 }
            put.profile.metadata = "seed \(seed)"
            return put
        }

        /// Enrolls `ids` through `count` concurrent clients; every write must be acknowledged.
        static func enroll(_ service: ServiceProcess, _ ids: [String], seed: Int = 0, clients count: Int = 8) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<count {
                    group.addTask {
                        let client = service.client()
                        defer { client.close() }
                        for (index, id) in ids.enumerated() where index % count == worker {
                            guard case .putOk = try await client.send(.put(profile(id, seed: seed + index))) else {
                                throw IntegrationError("put \(id) was not acknowledged")
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }

        static func get(_ id: String) -> Envelope.OneOf_Message {
            var get = Voxsync_V1_GetRequest()
            get.speakerID = id
            return .get(get)
        }

        /// The version a service's cache answers for `id`, or "not found".
        static func version(_ id: String, via client: VoxClient) async -> String {
            do {
                guard case .getOk(let answer) = try await client.send(get(id)) else { return "no get_ok" }
                return String(answer.profile.version)
            } catch {
                if case .server(.notFound) = error.code { return "not found" }
                return "\(error)"
            }
        }

        static func syncStatus(_ service: ServiceProcess) async throws -> Voxsync_V1_SyncStatusResponse {
            let client = service.client(socket: service.dataDirectory + "/run/sync.sock") { $0.connectTimeout = .seconds(2) }
            defer { client.close() }
            guard case .syncStatusOk(let status) = try await client.send(.syncStatus(.init())) else {
                throw IntegrationError("no sync_status_ok")
            }
            return status
        }

        /// Local rows of a service (read from its SQLite file, as the workers wrote it).
        static func localRows(_ service: ServiceProcess) throws -> [ProfileRecord] {
            try SyncStore(configuration: StoreConfiguration(
                path: service.dataDirectory + "/voxsync.sqlite", dimension: dimension, origin: "reader")).allRows()
        }

        static func remoteRows(_ url: PostgresURL) async throws -> [ProfileRecord] {
            let remote = RemoteStore(url: url, poolSize: 1, logger: TestPostgres.logger)
            return try await remote.whileRunning { try await remote.allRows(timeout: .seconds(30)) }.map(\.record)
        }

        /// The remote table equals the local one, field for field; a difference names its row.
        static func expectEqual(remote: [ProfileRecord], local: [ProfileRecord], sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(remote.count == local.count, "rows: \(remote.count) remote, \(local.count) local", sourceLocation: sourceLocation)
            if let (r, l) = zip(remote, local).first(where: { $0 != $1 }) {
                Issue.record("first difference: remote \(r.speakerID) v\(r.version) \(r.origin) deleted=\(r.deleted) samples=\(r.samples.count) vs local \(l.speakerID) v\(l.version) \(l.origin) deleted=\(l.deleted) samples=\(l.samples.count)", sourceLocation: sourceLocation)
            }
        }

        static func settings(_ url: PostgresURL, _ extra: [String] = []) -> [String] {
            ["postgres_url=\(url.unredactedString)", "sync_interval_ms=100", "postgres_timeout_ms=1000"] + extra
        }

        @Test func writesReachPostgreSQLAndNothingIsLostWhenTheSyncWorkerIsKilledMidBatch() async throws {
            let url = try await TestPostgres.freshDatabase()
            let service = try await ServiceProcess.started(settings: Self.settings(url, ["sync_batch_size=10"]))
            defer { service.cleanUp() }
            let ids = (0..<3000).map { "speaker-\($0)" }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await Self.enroll(service, ids) }
                // Kill the sync worker three times while batches are in flight.
                group.addTask {
                    for _ in 0..<3 {
                        try await eventually(timeout: .seconds(30), "sync worker ready") {
                            service.worker(.sync, in: try await service.status()).state == "ready"
                        }
                        try await Task.sleep(for: .milliseconds(300))
                        let pid = service.worker(.sync, in: try await service.status()).pid
                        kill(pid, SIGKILL)
                    }
                }
                try await group.waitForAll()
            }
            try await eventually(timeout: .seconds(60), "the outbox drained") {
                (try? await Self.syncStatus(service).queueSize) == 0
            }
            #expect(service.worker(.sync, in: try await service.status()).restarts >= 3)
            let local = try Self.localRows(service)
            let remote = try await Self.remoteRows(url)
            #expect(local.count == 3000)
            Self.expectEqual(remote: remote, local: local)
        }

        @Test func postgresStoppedWritesStayLocalTheBreakerOpensAndEverythingDrainsWhenItIsBack() async throws {
            let cluster = try PrivatePostgres()
            defer { cluster.destroy() }
            try await cluster.initialize()
            try await cluster.start()
            let service = try await ServiceProcess.started(settings: Self.settings(cluster.url, [
                "circuit_failure_threshold=2", "circuit_break_ms=200",
            ]))
            defer { service.cleanUp() }
            try await Self.enroll(service, (0..<20).map { "before-\($0)" })
            try await eventually(timeout: .seconds(30), "the first writes synced") { (try? await Self.syncStatus(service).queueSize) == 0 }

            try await cluster.stop()
            try await Self.enroll(service, (0..<30).map { "during-\($0)" }, seed: 100)
            try await eventually(timeout: .seconds(30), "the breaker open with the writes queued") {
                let status = try await Self.syncStatus(service)
                return status.circuitState == "open" && status.queueSize == 30
            }
            // Reads and writes never waited on PostgreSQL.
            let client = service.client()
            defer { client.close() }
            guard case .getOk(let got) = try await client.send(Self.get("during-7")) else { throw IntegrationError("no get_ok") }
            #expect(got.profile.metadata == "seed 107")

            try await cluster.start()
            try await eventually(timeout: .seconds(60), "the queue drained after PostgreSQL came back") {
                let status = try await Self.syncStatus(service)
                return status.queueSize == 0 && status.circuitState == "closed"
            }
            let status = try await Self.syncStatus(service)
            #expect(status.circuitOpenings >= 1 && status.failuresTotal >= 2)
            try Self.expectEqual(remote: await Self.remoteRows(cluster.url), local: Self.localRows(service))
            #expect(service.log.contains("circuit closed -> open"), "the transition is logged")
        }

        @Test func twoInstancesEditingTheSameSpeakersConverge() async throws {
            let url = try await TestPostgres.freshDatabase()
            let a = try await ServiceProcess.started(settings: Self.settings(url))
            defer { a.cleanUp() }
            let b = try await ServiceProcess.started(settings: Self.settings(url))
            defer { b.cleanUp() }
            let ids = (0..<100).map { "shared-\($0)" }
            for round in 0..<3 {
                async let onA: Void = Self.enroll(a, ids, seed: round * 1000, clients: 4)
                async let onB: Void = Self.enroll(b, ids.reversed(), seed: round * 1000 + 500, clients: 4)
                _ = try await (onA, onB)
            }
            let clientA = a.client(), clientB = b.client()
            defer { clientA.close(); clientB.close() }
            var delete = Voxsync_V1_DeleteRequest()
            delete.speakerID = "shared-5"
            _ = try await clientA.send(.delete(delete))

            try await eventually(timeout: .seconds(60), "both stores and PostgreSQL hold the same rows") {
                guard (try? await Self.syncStatus(a).queueSize) == 0, (try? await Self.syncStatus(b).queueSize) == 0 else { return false }
                let remote = try await Self.remoteRows(url)
                return try remote.count == 100 && Self.localRows(a) == remote && Self.localRows(b) == remote
            }
            let remote = try await Self.remoteRows(url)
            #expect(Set(remote.map(\.origin)).count == 2, "each instance won some speakers")
            // The caches took the pulled winners too: both answer every speaker with the same
            // version. The sync worker commits a pull, then tells the cache: allow for that hop.
            var mismatches: [String] = []
            try? await eventually(timeout: .seconds(30), "both caches answer PostgreSQL's versions") {
                mismatches = []
                for record in remote {
                    let (fromA, fromB) = (await Self.version(record.speakerID, via: clientA), await Self.version(record.speakerID, via: clientB))
                    let expected = record.deleted ? "not found" : String(record.version)
                    if fromA != expected || fromB != expected {
                        mismatches.append("\(record.speakerID): \(fromA) / \(fromB), PostgreSQL has \(expected)")
                    }
                }
                return mismatches.isEmpty
            }
            #expect(mismatches.isEmpty, "\(mismatches)")
        }
    }
}

/// A PostgreSQL cluster of the test's own, which it may stop and start (`launch/test-postgres`).
final class PrivatePostgres: @unchecked Sendable {
    /// `<parent>/pg`: the parent is made searchable for the postgres user, never /tmp itself.
    let parent = "/tmp/vxpg-" + String(UUID().uuidString.prefix(8))
    var directory: String { parent + "/pg" }
    let port: Int
    let url: PostgresURL
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("launch/test-postgres").path

    init() throws {
        guard let port = LoopbackPort.unused() else { throw IntegrationError("no unused TCP port on 127.0.0.1 for PostgreSQL") }
        self.port = port
        url = try PostgresURL(parsing: "postgres://postgres@127.0.0.1:\(port)/postgres?sslmode=disable")
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    }

    func initialize() async throws { try await run(["init", directory]) }
    func start() async throws { try await run(["start", directory, String(port)]) }
    func stop() async throws { try await run(["stop", directory]) }

    func destroy() {
        // Synchronous on purpose (a defer): stop the server, then remove its files.
        _ = try? runCommandBlocking(["/bin/bash", Self.script, "stop", directory])
        try? FileManager.default.removeItem(atPath: parent)
    }

    private func run(_ arguments: [String]) async throws {
        let status = try await runCommand(["/bin/bash", Self.script] + arguments)
        guard status == 0 else {
            throw IntegrationError("launch/test-postgres \(arguments.joined(separator: " ")) failed (status \(status))")
        }
    }
}
