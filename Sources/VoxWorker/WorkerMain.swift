import CVoxSys
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import CoreMetrics
import VoxCore
import VoxMetrics
import VoxTransport
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// `voxsyncd worker <role>`: what a worker process does, from its first instruction to exit.
public enum WorkerMain {
    /// Runs the worker; returns when it has stopped gracefully.
    public static func run(role: ServiceRole) async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let supervisorText = environment["VOXSYNC_SUPERVISOR_PID"], let supervisorPID = pid_t(supervisorText),
              let controlText = environment["VOXSYNC_CONTROL_FD"], let controlFD = CInt(controlText),
              let configurationText = environment["VOXSYNC_WORKER_CONFIG"] else {
            throw ConfigurationError("'voxsyncd worker' is started by the voxsyncd supervisor, not by hand; run 'voxsyncd' instead")
        }
        // Die with the supervisor: the kernel sends SIGKILL when the parent exits. If it is
        // already gone (it died before this line), exit now.
        _ = voxsync_set_parent_death_signal(SIGKILL)
        guard getppid() == supervisorPID else { exit(0) }

        var configuration = VoxsyncConfiguration()
        try ConfigurationLoader.apply(json: Data(configurationText.utf8), source: "VOXSYNC_WORKER_CONFIG", to: &configuration)
        var logger = Logger(label: "voxsyncd.\(role.rawValue)")
        logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
        if configuration.crashAtStart == role {
            logger.error("crash_at_start is set for this role: exiting with code 70 (fault injection for tests)")
            exit(70)
        }

        // Every process keeps its figures in one registry behind swift-metrics; all but the
        // metrics worker (which renders its own registry directly) report it once a second.
        let metrics = MetricsRegistry()
        if configuration.metricsEnabled {
            MetricsSystem.bootstrap(VoxMetricsFactory(registry: metrics))
        }
        if role != .metrics && configuration.metricsEnabled {
            MetricsReporter(
                registry: metrics, role: WorkerRole(role), metricsSocket: configuration.workerSocketPath(.metrics),
                loop: MultiThreadedEventLoopGroup.singleton.next(), logger: logger
            ).start()
        }

        let log = logger
        let service = try makeService(role: role, configuration: configuration, environment: environment, metrics: metrics, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm],
            logger: logger))
        let control = try await ControlChannel.open(descriptor: controlFD, group: MultiThreadedEventLoopGroup.singleton) { reason in
            // The supervisor is gone (or closed the channel): nothing supervises us any more.
            log.info("control channel closed; exiting", metadata: ["reason": "\(reason)"])
            exit(0)
        } onShutdown: {
            Task { await group.triggerGracefulShutdown() }
        }

        let detail = try await service.prepare()
        var ready = Voxsync_V1_WorkerReady()
        ready.role = WorkerRole(role)
        ready.pid = getpid()
        ready.detail = detail
        control.send(Envelope(requestID: 1, .workerReady(ready)))
        try await group.run()
        logger.debug("stopped")
    }

    /// The instance id the supervisor keeps in the data directory.
    private static func instanceID(_ configuration: VoxsyncConfiguration) -> String {
        (try? String(contentsOfFile: configuration.dataDirectory + "/instance-id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
    }

    private static func makeService(
        role: ServiceRole, configuration: VoxsyncConfiguration, environment: [String: String], metrics: MetricsRegistry, logger: Logger
    ) throws -> any WorkerRoleService {
        switch role {
        case .cache:
            guard let text = environment["VOXSYNC_LISTEN_FD"], let fd = CInt(text) else {
                throw ConfigurationError("the cache worker needs the client socket from the supervisor (VOXSYNC_LISTEN_FD)")
            }
            return CacheRoleService(configuration: configuration, listenDescriptor: fd, instanceID: instanceID(configuration), logger: logger)
        case .sync:
            return SyncRoleService(configuration: configuration, instanceID: instanceID(configuration), registry: metrics, logger: logger)
        case .metrics:
            return MetricsRoleService(configuration: configuration, instanceID: instanceID(configuration), registry: metrics, logger: logger)
        case .prefetch:
            guard configuration.prefetchEnabled else {
                return IdleRoleService(detail: "prefetch disabled (prefetch_enabled=false): nothing is learned or prefetched")
            }
            return PrefetchRoleService(configuration: configuration, instanceID: instanceID(configuration), registry: metrics, logger: logger)
        }
    }
}
