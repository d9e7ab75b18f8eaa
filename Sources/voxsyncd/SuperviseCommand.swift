import ArgumentParser
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import VoxCore
import VoxMetrics
import VoxSupervisor
import VoxTransport
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

struct SuperviseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Start the supervisor and its workers (the default).")

    @Option(help: "JSON config file of key: value pairs (see 'voxsyncd config-keys').")
    var config: String?

    @Option(help: "Data directory (default $VOXSYNC_DATA_DIR or ~/.local/share/voxsync).")
    var dataDir: String?

    @Option(help: "Client socket path (default <data-dir>/run/voxsync.sock).")
    var socket: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Any configuration key: --set key=value (repeatable).", valueName: "key=value"))
    var settings: [String] = []

    @Flag(help: ArgumentHelp(
        "Stop, as on SIGTERM, once the process that started voxsyncd has exited.",
        discussion: "For test harnesses and benchmarks: one that is killed leaves no voxsyncd behind. Checked every 250 ms. A voxsyncd whose parent had already exited when it started cannot tell, and keeps running."))
    var exitWithParent = false

    func run() async throws {
        // Read first: the parent could be gone before the service is up.
        let parent = exitWithParent ? getppid() : nil
        let configuration: VoxsyncConfiguration
        do {
            configuration = try loadConfiguration()
        } catch {
            FileHandle.standardError.write(Data("voxsyncd: \(error.message)\n".utf8))
            throw ExitCode(78)
        }
        do {
            try await Self.supervise(configuration, exitWhenOrphanedFrom: parent)
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("voxsyncd: \(error.message)\n".utf8))
            throw ExitCode(78)
        } catch let error as TransportError {
            FileHandle.standardError.write(Data("voxsyncd: \(error.message)\n".utf8))
            throw ExitCode(78)
        }
    }

    private func loadConfiguration() throws(ConfigurationError) -> VoxsyncConfiguration {
        var overrides: [(key: String, value: String)] = []
        for setting in settings {
            guard let equals = setting.firstIndex(of: "=") else {
                throw ConfigurationError("--set takes key=value; got '\(setting)'")
            }
            overrides.append((String(setting[..<equals]), String(setting[setting.index(after: equals)...])))
        }
        if let dataDir { overrides.append(("data_dir", dataDir)) }
        if let socket { overrides.append(("socket", socket)) }
        if let logLevel { overrides.append(("log_level", logLevel)) }
        return try ConfigurationLoader.load(file: config, overrides: overrides)
    }

    /// Runs the service until SIGTERM or SIGINT; with `parent`, also until this process is no
    /// longer `parent`'s child (it exited, and the kernel handed this process to init or a
    /// subreaper).
    static func supervise(_ configuration: VoxsyncConfiguration, exitWhenOrphanedFrom parent: pid_t? = nil) async throws {
        var logger = Logger(label: "voxsyncd")
        logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
        let started = ContinuousClock.now

        try createPrivateDirectory(configuration.dataDirectory, key: "data_dir")
        try createPrivateDirectory(configuration.runDirectory, key: "data_dir (run/)")
        let lock = try DataDirectoryLock(path: configuration.lockFilePath)
        let instanceID = try instanceID(in: configuration.dataDirectory)
        let listenDescriptor = try ListeningSocket.bind(path: configuration.clientSocketPath, mode: 0o600)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let supervisor = Supervisor(configuration: configuration, listenDescriptor: listenDescriptor, loop: group.next(), logger: logger)
        ChildReaper { pid, reason in supervisor.childExited(pid: pid, reason: reason) }.start()
        // The supervisor's own figures: each worker's state and restarts, read from its state
        // machine once a second and sent to the metrics worker like any process's.
        let metrics = MetricsRegistry()
        let reporter = MetricsReporter(
            registry: metrics, role: .supervisor, metricsSocket: configuration.workerSocketPath(.metrics),
            loop: supervisor.loop, logger: logger)
        supervisor.loop.scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(1)) { _ in
            supervisor.status().whenSuccess { status in
                for worker in status.workers {
                    let labels = [("worker", worker.role.serviceRole?.rawValue ?? "unknown")]
                    metrics.setGauge("worker_up", labels, to: worker.state == "ready" ? 1 : 0)
                    metrics.setCounter("worker_restarts_total", labels, to: Double(worker.restarts))
                }
            }
        }
        if configuration.metricsEnabled { reporter.start() }

        let service = SupervisorService(supervisor: supervisor, group: group, listenDescriptor: listenDescriptor,
                                        configuration: configuration, instanceID: instanceID, started: started, lock: lock)
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        if let parent {
            let logger = logger
            // Polled rather than PR_SET_PDEATHSIG, which fires when the parent *thread* that
            // started this process exits: a harness may start it from a pool thread that ends.
            // The shutdown is asked of the service group, not sent as SIGTERM: a request made
            // before the group runs is kept, where a signal would meet the default action.
            supervisor.loop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { task in
                guard getppid() != parent else { return }
                task.cancel()
                logger.notice("the process that started voxsyncd (pid \(parent)) has exited; stopping (--exit-with-parent)")
                Task { await serviceGroup.triggerGracefulShutdown() }
            }
        }
        try await serviceGroup.run()
    }

    private static func createPrivateDirectory(_ path: String, key: String) throws(ConfigurationError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ConfigurationError("\(key): cannot create \(path): \(error.localizedDescription)")
        }
        guard access(path, W_OK) == 0 else {
            throw ConfigurationError("\(key): \(path) is not writable by this user (uid \(getuid())); fix its permissions or choose another directory")
        }
        chmod(path, 0o700)
    }

    /// A stable id per data directory, created on first start.
    private static func instanceID(in dataDirectory: String) throws(ConfigurationError) -> String {
        let path = dataDirectory + "/instance-id"
        if let existing = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !existing.isEmpty {
            return existing
        }
        let id = UUID().uuidString.lowercased()
        do {
            try id.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw ConfigurationError("cannot write \(path): \(error.localizedDescription)")
        }
        return id
    }
}

/// Runs the supervisor until SIGTERM/SIGINT, then stops the workers in order and cleans up.
struct SupervisorService: Service {
    let supervisor: Supervisor
    let group: EventLoopGroup
    let listenDescriptor: CInt
    let configuration: VoxsyncConfiguration
    let instanceID: String
    let started: ContinuousClock.Instant
    let lock: DataDirectoryLock

    func run() async throws {
        // The control socket opens here, once the ServiceGroup handles SIGTERM/SIGINT: whoever
        // can ask for status can also stop the service cleanly.
        var controlConfiguration = ServerConfiguration()
        controlConfiguration.acceptsInternalMessages = true
        controlConfiguration.allowedUIDs.formUnion(configuration.allowedUIDs)
        let control = try await UnixSocketServer.bind(
            path: configuration.controlSocketPath,
            identity: ServerIdentity(serverName: "voxsyncd 0.1.0 (supervisor)", instanceID: instanceID,
                                     embeddingDimension: UInt32(configuration.embeddingDimension),
                                     embeddingModel: configuration.embeddingModel),
            configuration: controlConfiguration, responder: SupervisorResponder(supervisor: supervisor),
            group: group, logger: supervisor.logger)

        // Wait for every worker's first readiness (for the summary), but no longer than 30 s
        // and not past a SIGTERM: a worker that never gets ready must not hold up a stop.
        let isReady = NIOLockedValueBox(false)
        supervisor.start().whenSuccess { isReady.withLockedValue { $0 = true } }
        let deadline = ContinuousClock.now + .seconds(30)
        while !isReady.withLockedValue({ $0 }) && !Task.isShuttingDownGracefully && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let summary = await StartupSummary.render(
            configuration: configuration, instanceID: instanceID, supervisor: supervisor,
            startedIn: started.duration(to: .now))
        FileHandle.standardOutput.write(Data((summary + "\n").utf8))

        try? await gracefulShutdown()
        try await supervisor.stop().get()
        await control.shutdown()
        close(listenDescriptor)
        unlink(configuration.clientSocketPath)
        withExtendedLifetime(lock) {}
        FileHandle.standardOutput.write(Data("voxsyncd: stopped\n".utf8))
    }
}
