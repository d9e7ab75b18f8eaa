import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import VoxCore
import VoxMetrics
import VoxStore
import VoxSync
import VoxTransport
import VoxWire

/// The sync worker: drains the outbox to PostgreSQL, pulls other instances' changes and tells
/// the cache worker which speakers changed; serves `<run>/sync.sock` for the cache's nudges and
/// `voxsync sync status | dead-letters | retry`.
final class SyncRoleService: WorkerRoleService {
    private let configuration: VoxsyncConfiguration
    private let instanceID: String
    private let logger: Logger
    private let parts = NIOLockedValueBoxHolder<Parts>()

    private struct Parts: Sendable {
        var engine: SyncEngine
        var remote: RemoteStore?
        var wakeup: Wakeup
        var server: UnixSocketServer
        var invalidations: PeerSender
    }

    private let registry: MetricsRegistry

    init(configuration: VoxsyncConfiguration, instanceID: String, registry: MetricsRegistry, logger: Logger) {
        self.registry = registry
        self.configuration = configuration
        self.instanceID = instanceID
        self.logger = logger
    }

    func prepare() async throws -> String {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let store = try SyncStore(configuration: StoreConfiguration(configuration, origin: instanceID))
        var remote: RemoteStore?
        if let text = configuration.postgresURL {
            remote = RemoteStore(
                url: try PostgresURL(parsing: text), poolSize: configuration.postgresPoolSize,
                statementTimeout: configuration.postgresTimeout, logger: logger)
        }
        var all = Voxsync_V1_Invalidate()
        all.all = true
        let invalidations = PeerSender(
            path: configuration.workerSocketPath(.cache), clientName: "voxsyncd sync", capacity: 256,
            afterLoss: .invalidate(all), loop: loop, logger: logger)
        var settings = SyncSettings()
        settings.batchSize = configuration.syncBatchSize
        settings.interval = configuration.syncInterval
        settings.maxRetryAttempts = configuration.maxRetryAttempts
        settings.remoteTimeout = configuration.postgresTimeout
        settings.breaker = .init(
            failureThreshold: configuration.circuitFailureThreshold, initialBreak: configuration.circuitBreak,
            maximumBreak: max(configuration.circuitBreak, .seconds(60)))
        let engine = SyncEngine(store: store, remote: remote, settings: settings, logger: logger) { changed in
            // One message per 1000 speakers keeps each frame small.
            stride(from: 0, to: changed.count, by: 1000).forEach { start in
                var message = Voxsync_V1_Invalidate()
                message.speakerIds = Array(changed[start..<min(start + 1000, changed.count)])
                invalidations.send(.invalidate(message))
            }
        }
        let wakeup = Wakeup(loop: loop)
        let server = try await WorkerSocket.bind(
            .sync, configuration: configuration, instanceID: instanceID,
            responder: SyncResponder(engine: engine, wakeup: wakeup), logger: logger)
        parts.value = Parts(engine: engine, remote: remote, wakeup: wakeup, server: server, invalidations: invalidations)
        let queued = await engine.status().queueSize
        guard let remote else { return "no remote configured (postgres_url); the outbox waits (\(queued) queued)" }
        return "syncing with \(remote.url), pool \(remote.poolSize); \(queued) queued"
    }

    /// Sets the sync figures the metrics worker exports (names of DESIGN.md section 5).
    static func export(_ engine: SyncEngine, to registry: MetricsRegistry) async {
        let status = await engine.status()
        let deadLettered = await engine.deadLetteredTotal
        registry.setCounter("syncs_total", [("status", "success")], to: Double(status.pushedTotal))
        registry.setCounter("syncs_total", [("status", "failed")], to: Double(status.failuresTotal))
        registry.setCounter("syncs_total", [("status", "dead_letter")], to: Double(deadLettered))
        registry.setCounter("pulled_total", to: Double(status.pulledTotal))
        registry.setGauge("queue_size", to: Double(status.queueSize))
        registry.setGauge("queue_oldest_age_seconds", to: status.oldestQueuedAgeSeconds)
        registry.setGauge("dead_letters", to: Double(status.deadLetters))
        registry.setGauge("connection_pool_size", to: Double(status.poolSize))
        registry.setGauge("connection_pool_load", to: status.poolLoad)
        let phase: CircuitBreaker<ContinuousClock.Instant>.Phase = switch status.circuitState {
        case "open": .open
        case "half-open": .halfOpen
        default: .closed
        }
        registry.setGauge("circuit_state", to: Double(phase.rawValue))
    }

    func run() async throws {
        guard let parts = parts.value else { return }
        let registry = self.registry
        let stopping = NIOLockedValueBox(false)
        let deadline = configuration.shutdownTimeout * 0.5
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                if let remote = parts.remote {
                    group.addTask { await remote.run() }
                }
                // Figures at most once a second (as often as the metrics are sent), not once
                // per nudge: see `ExportPacing`.
                var pacing = ExportPacing<ContinuousClock.Instant>()
                while !stopping.withLockedValue({ $0 }) {
                    let next = pacing.afterCycle(at: .now, delay: await parts.engine.cycle())
                    if next.export { await Self.export(parts.engine, to: registry) }
                    if stopping.withLockedValue({ $0 }) { break }
                    await parts.wakeup.wait(upTo: next.wait)
                }
                // Push what is queued within a bound; the rest waits in the outbox for next time.
                let report = await parts.engine.drain(until: .now + deadline)
                let left = await parts.engine.status().queueSize
                logger.info("sync stopped", metadata: ["pushed_at_shutdown": "\(report.pushed)", "left_queued": "\(left)"])
                group.cancelAll()
            }
        } onGracefulShutdown: {
            stopping.withLockedValue { $0 = true }
            parts.wakeup.signal()
        }
        await parts.server.shutdown()
        parts.invalidations.close()
        await parts.engine.shutdown()
    }
}

/// Answers on `<run>/sync.sock`.
struct SyncResponder: ServerResponder {
    let engine: SyncEngine
    let wakeup: Wakeup

    func respond(to request: Envelope.OneOf_Message, connection: ConnectionInfo) -> ServerResponse {
        switch request {
        case .outboxNudge:
            wakeup.signal()
            return .now(.ack(Ack()))
        case .syncStatus:
            return later(connection) { .syncStatusOk(await engine.status()) }
        case .deadLetters(let request):
            let limit = request.limit == 0 ? 100 : Int(request.limit)
            guard (1...1000).contains(limit) else {
                return .now(Self.error("limit must be between 1 and 1000 (0 means 100); got \(request.limit)", field: "limit"))
            }
            return later(connection) {
                let (letters, total) = try await engine.deadLetters(limit: limit)
                var answer = Voxsync_V1_DeadLettersResponse()
                answer.total = UInt64(total)
                answer.deadLetters = letters.map { letter in
                    var message = Voxsync_V1_DeadLetter()
                    message.id = letter.id
                    message.speakerID = letter.speakerID
                    message.version = letter.version
                    message.attempts = UInt32(clamping: letter.attempts)
                    message.error = letter.error
                    message.failedAtUnixMs = letter.failedAt
                    return message
                }
                return .deadLettersOk(answer)
            }
        case .retryDeadLetters(let request):
            guard request.id >= 0 else {
                return .now(Self.error("id must be a dead letter's id from 'voxsync sync dead-letters', or 0 for all; got \(request.id)", field: "id"))
            }
            return later(connection) {
                var answer = Voxsync_V1_RetryDeadLettersResponse()
                answer.requeued = UInt64(try await engine.retryDeadLetters(id: request.id == 0 ? nil : request.id))
                wakeup.signal()
                return .retryDeadLettersOk(answer)
            }
        default:
            return .now(Self.error("\(request.name) is not served by the sync worker's socket; profile operations go to the client socket"))
        }
    }

    private func later(_ connection: ConnectionInfo, _ body: @escaping @Sendable () async throws -> Envelope.OneOf_Message) -> ServerResponse {
        let promise = connection.eventLoop.makePromise(of: Envelope.OneOf_Message.self)
        promise.completeWithTask {
            do {
                return try await body()
            } catch {
                return Self.error("the sync worker's store failed: \(error)", code: .internal)
            }
        }
        return .later(promise.futureResult)
    }

    static func error(_ message: String, code: ErrorCode = .invalidArgument, field: String = "") -> Envelope.OneOf_Message {
        .error(Envelope.error(requestID: 0, code: code, message: message, field: field).error)
    }
}
