import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import VoxChaos
import VoxClient
import VoxCore
import VoxStore
import VoxSync
import VoxTransport
import VoxWire

/// How the chaos run looks at the service: the supervisor's status, the sync worker's status,
/// the metrics endpoint, the store's file, PostgreSQL, and gets over the client socket.
struct ChaosProbes: Sendable {
    let daemon: ChaosDaemon
    let metricsPort: Int
    let remote: PostgresURL?
    let logger: Logger

    private func client(_ path: String) -> VoxClient {
        var configuration = VoxClientConfiguration(socketPath: path)
        configuration.clientName = "voxsync-bench-chaos-audit"
        configuration.connectTimeout = .seconds(2)
        return VoxClient(configuration: configuration)
    }

    func status() async throws -> StatusResponse {
        let control = client(daemon.controlPath)
        defer { control.close() }
        return try await ChaosMonkey.status(control)
    }

    func syncStatus() async throws -> Voxsync_V1_SyncStatusResponse {
        let sync = client(daemon.syncPath)
        defer { sync.close() }
        guard case .syncStatusOk(let status) = try await sync.send(.syncStatus(.init()), timeout: .seconds(5)) else {
            throw BenchError("the sync worker did not answer sync_status")
        }
        return status
    }

    func dimension() async throws -> Int {
        let cache = client(daemon.socketPath)
        defer { cache.close() }
        return Int(try await cache.serverHello().embeddingDimension)
    }

    func waitUntilAllReady(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard daemon.isRunning else { throw BenchError("voxsyncd exited with code \(daemon.exitCode ?? -1); its log:\n\(daemon.logTail())") }
            if let status = try? await status(), status.workers.count == ServiceRole.allCases.count,
               status.workers.allSatisfy({ $0.state == "ready" }) {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError("the workers were not all ready within \(timeout); voxsyncd's log:\n\(daemon.logTail())")
    }

    /// `<ns>_worker_restarts_total{worker=...}` per worker from the metrics endpoint.
    func scrapedRestarts() async -> [String: Int]? {
        guard let url = URL(string: "http://127.0.0.1:\(metricsPort)/metrics") else { return nil }
        var request = URLRequest(url: url)
        request.timeoutInterval = 2
        guard let (data, _) = try? await URLSession.shared.data(for: request) else { return nil }
        var restarts: [String: Int] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("voxsync_worker_restarts_total{") {
            guard let open = line.range(of: "worker=\""), let close = line[open.upperBound...].firstIndex(of: "\""),
                  let value = Double(line.split(separator: " ").last ?? "") else { continue }
            restarts[String(line[open.upperBound..<close])] = Int(value)
        }
        return restarts.isEmpty ? nil : restarts
    }

    /// What still keeps the service from being settled (empty: settled): a worker not ready
    /// or still stopped, the outbox not pushed, the metrics behind the supervisor.
    func unsettled(record: Locked<ChaosRecord>) async -> [String] {
        guard daemon.isRunning else { return ["voxsyncd exited with code \(daemon.exitCode ?? -1)"] }
        guard let status = try? await status() else { return ["the supervisor does not answer status"] }
        var problems: [String] = []
        let stopped = record.withLock { $0.stopped }
        for worker in status.workers where worker.state != "ready" || stopped.contains(worker.pid) {
            problems.append("\(worker.role.serviceRole?.rawValue ?? "?") is \(stopped.contains(worker.pid) ? "still SIGSTOPped" : worker.state)")
        }
        if remote != nil {
            if let sync = try? await syncStatus() {
                if sync.queueSize > 0 || sync.circuitState != "closed" {
                    problems.append("sync queue \(sync.queueSize), circuit \(sync.circuitState)")
                }
            } else {
                problems.append("the sync worker does not answer")
            }
        }
        let statusRestarts = Dictionary(uniqueKeysWithValues: status.workers.map { ($0.role.serviceRole?.rawValue ?? "?", Int($0.restarts)) })
        if let scraped = await scrapedRestarts() {
            if statusRestarts.contains(where: { scraped[$0.key, default: 0] != $0.value }) { problems.append("metrics behind the supervisor") }
        } else {
            problems.append("metrics endpoint not answering")
        }
        return problems
    }

    /// Every row of the store's SQLite file, as the workers wrote it.
    func localRows(dimension: Int) throws -> [ProfileRecord] {
        try SyncStore(configuration: StoreConfiguration(path: daemon.dataDirectory + "/voxsync.sqlite", dimension: dimension,
                                                        origin: "voxsync-bench-chaos")).allRows()
    }

    func remoteRows() async throws -> [ProfileRecord]? {
        guard let remote else { return nil }
        let store = RemoteStore(url: remote, poolSize: 1, logger: logger)
        return try await store.whileRunning { try await store.allRows(timeout: .seconds(60)) }.map(\.record)
    }

    /// The version the cache worker answers for each of `speakers` (nil: not found).
    func servedVersions(_ speakers: [String]) async throws -> [String: UInt64?] {
        let cache = client(daemon.socketPath)
        defer { cache.close() }
        var versions: [String: UInt64?] = [:]
        for speaker in speakers {
            var get = Voxsync_V1_GetRequest()
            get.speakerID = speaker
            do {
                guard case .getOk(let answer) = try await cache.send(.get(get)) else { throw BenchError("get \(speaker): no get_ok") }
                versions[speaker] = .some(answer.profile.version)
            } catch let error as VoxClientError {
                guard case .server(.notFound) = error.code else { throw error }
                versions[speaker] = .some(nil)
            }
        }
        return versions
    }
}

extension ObservedRow {
    init(_ record: ProfileRecord) {
        self.init(speakerID: record.speakerID, version: record.version, deleted: record.deleted, metadata: record.metadata,
                  threshold: record.threshold, embedding: record.embedding)
    }
}
