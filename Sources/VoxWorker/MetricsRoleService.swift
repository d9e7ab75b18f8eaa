import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import VoxCore
import VoxMetrics
import VoxTransport
import VoxWire

/// The metrics worker: collects every process's cumulative snapshot on `<run>/metrics.sock` and
/// serves them as one Prometheus exposition on `metrics_address`.
///
/// Because every process sends its totals (not increments) once a second, a restarted metrics
/// worker has the same totals as soon as the snapshots arrive; it reports ready only after the
/// supervisor, cache and sync snapshots are in (or 1.5 s passed), so its first scrape is whole.
final class MetricsRoleService: WorkerRoleService {
    private let configuration: VoxsyncConfiguration
    private let instanceID: String
    private let registry: MetricsRegistry
    private let logger: Logger
    private let collector = SnapshotCollector()
    private let servers = NIOLockedValueBoxHolder<(UnixSocketServer, MetricsHTTPServer?)>()
    private let mirror = NIOLockedValueBoxHolder<RedisMirror>()

    init(configuration: VoxsyncConfiguration, instanceID: String, registry: MetricsRegistry, logger: Logger) {
        self.configuration = configuration
        self.instanceID = instanceID
        self.registry = registry
        self.logger = logger
    }

    func prepare() async throws -> String {
        let socket = try await WorkerSocket.bind(
            .metrics, configuration: configuration, instanceID: instanceID,
            responder: SnapshotResponder(collector: collector, registry: registry), logger: logger)

        var http: MetricsHTTPServer?
        var detail: String
        if let (host, port) = Self.split(configuration.metricsAddress) {
            let (collector, registry, namespace) = (collector, registry, configuration.metricsNamespace)
            do {
                http = try await MetricsHTTPServer.start(host: host, port: port, group: MultiThreadedEventLoopGroup.singleton, logger: logger) { format in
                    let own = registry.snapshot(role: .metrics, pid: getpid(), takenAt: 0)
                    return PrometheusExposition.render(collector.all + [own], namespace: namespace, format: format)
                }
                detail = "Prometheus on http://\(configuration.metricsAddress)/metrics (namespace \(namespace))"
            } catch {
                // Metrics are optional: the service goes on without the endpoint.
                logger.error("cannot serve Prometheus metrics; the service runs on without them", metadata: [
                    "metrics_address": "\(configuration.metricsAddress)", "error": "\(error)",
                ])
                detail = "Prometheus endpoint unavailable: cannot listen on \(configuration.metricsAddress) (\(error))"
            }
        } else {
            detail = "Prometheus endpoint disabled (metrics_address is empty)"
        }
        servers.value = (socket, http)

        if let text = configuration.redisURL {
            let (collector, registry) = (collector, registry)
            let mirror = RedisMirror(
                url: try RedisURL(parsing: text),
                plan: RedisMirrorPlan(prefix: configuration.redisPrefix, instance: instanceID, ttlSeconds: Int(configuration.redisTTL.seconds)),
                logger: logger
            ) { collector.all + [registry.snapshot(role: .metrics, pid: getpid(), takenAt: 0)] }
            mirror.start()
            self.mirror.value = mirror
            detail += "; mirrored to Redis \(try RedisURL(parsing: text)) under \(configuration.redisPrefix):"
        } else {
            detail += "; no Redis mirror (redis_url unset)"
        }

        let deadline = ContinuousClock.now + .milliseconds(1500)
        while !collector.has([.supervisor, .cache, .sync]) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        return detail
    }

    func run() async throws {
        try? await gracefulShutdown()
        mirror.value?.stop()
        await servers.value?.1?.close()
        await servers.value?.0.shutdown()
    }

    static func split(_ address: String) -> (String, Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return nil }
        return (String(address[..<colon]), port)
    }
}

/// The latest snapshot of each process role: a restarted worker's first snapshot replaces its
/// predecessor's (whose totals died with it).
final class SnapshotCollector: Sendable {
    private let snapshots = NIOLockedValueBox<[WorkerRole: Voxsync_V1_MetricsSnapshot]>([:])

    func store(_ snapshot: Voxsync_V1_MetricsSnapshot) {
        snapshots.withLockedValue { $0[snapshot.role] = snapshot }
    }

    var all: [Voxsync_V1_MetricsSnapshot] {
        snapshots.withLockedValue { $0.sorted { $0.key.rawValue < $1.key.rawValue }.map(\.value) }
    }

    func has(_ roles: Set<WorkerRole>) -> Bool {
        snapshots.withLockedValue { roles.isSubset(of: Set($0.keys)) }
    }
}

/// Takes snapshots on `metrics.sock`, bounded and checked: a malformed one is refused with a
/// message and never reaches the exposition.
struct SnapshotResponder: ServerResponder {
    let collector: SnapshotCollector
    let registry: MetricsRegistry

    func respond(to request: Envelope.OneOf_Message, connection: ConnectionInfo) -> ServerResponse {
        guard case .metricsSnapshot(let snapshot) = request else {
            return .now(.error(Envelope.error(requestID: 0, code: .invalidArgument,
                                              message: "\(request.name) is not served by the metrics worker's socket").error))
        }
        if let problem = SnapshotRules.problem(in: snapshot) {
            return .now(.error(Envelope.error(requestID: 0, code: .invalidArgument, message: "metrics_snapshot refused: \(problem)").error))
        }
        collector.store(snapshot)
        registry.increment("metrics_snapshots_total", [("role", "\(snapshot.role)")])
        return .now(.ack(Ack()))
    }
}
