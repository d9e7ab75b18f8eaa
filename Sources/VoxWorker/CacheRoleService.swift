import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import VoxCache
import VoxCore
import VoxStore
import VoxTransport
import VoxWire

/// The cache worker: opens and preloads the local store, then serves the client socket it
/// inherited from the supervisor.
final class CacheRoleService: WorkerRoleService {
    private let configuration: VoxsyncConfiguration
    private let listenDescriptor: CInt
    private let instanceID: String
    private let logger: Logger
    private let server = NIOLockedValueBoxHolder<UnixSocketServer>()
    private let service = NIOLockedValueBoxHolder<CacheService>()

    init(configuration: VoxsyncConfiguration, listenDescriptor: CInt, instanceID: String, logger: Logger) {
        self.configuration = configuration
        self.listenDescriptor = listenDescriptor
        self.instanceID = instanceID
        self.logger = logger
    }

    func prepare() async throws -> String {
        var serverConfiguration = ServerConfiguration()
        serverConfiguration.wire.maxFrameBytes = configuration.maxFrameBytes
        serverConfiguration.maxConnections = configuration.maxConnections
        serverConfiguration.maxInFlightPerConnection = configuration.maxInFlightPerConnection
        serverConfiguration.idleTimeout = configuration.idleTimeout
        serverConfiguration.allowedUIDs.formUnion(configuration.allowedUIDs)
        // Finish in-flight requests well inside the supervisor's SIGKILL deadline.
        serverConfiguration.shutdownGracePeriod = configuration.shutdownTimeout * 0.8
        let identity = ServerIdentity(
            serverName: "voxsyncd 0.1.0 (cache)", instanceID: instanceID,
            embeddingDimension: UInt32(configuration.embeddingDimension))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        let store = StoreConfiguration(
            path: configuration.dataDirectory + "/voxsync.sqlite", dimension: configuration.embeddingDimension,
            origin: instanceID)
        let service = try CacheService(configuration: store, cacheCapacity: configuration.cacheCapacity, loop: group.next())
        self.service.value = service
        // Read before serving starts: afterwards the state belongs to the service's event loop.
        let summary = service.summary
        let server = try await UnixSocketServer.adopt(
            listeningDescriptor: listenDescriptor, identity: identity, configuration: serverConfiguration,
            responder: service, group: group, logger: logger)
        self.server.value = server
        return "serving \(configuration.clientSocketPath); \(summary)"
    }

    func run() async throws {
        try? await gracefulShutdown()
        await server.value?.shutdown()
        try? await service.value?.shutdown()
    }
}

/// A lock-protected optional value, set once in `prepare` and read in `run`.
final class NIOLockedValueBoxHolder<Value: Sendable>: Sendable {
    private let box = NIOLockedValueBox<Value?>(nil)
    var value: Value? {
        get { box.withLockedValue { $0 } }
        set { box.withLockedValue { $0 = newValue } }
    }
}

import NIOConcurrencyHelpers
