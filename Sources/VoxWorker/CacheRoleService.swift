import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import VoxCore
import VoxTransport
import VoxWire

/// The cache worker: serves the client socket it inherited from the supervisor.
///
/// Profile operations arrive with the cache-worker issue; until then every one is answered
/// `UNAVAILABLE` with a message that says so (hello and ping are served by the transport).
final class CacheRoleService: WorkerRoleService {
    private let configuration: VoxsyncConfiguration
    private let listenDescriptor: CInt
    private let instanceID: String
    private let logger: Logger
    private let server = NIOLockedValueBoxHolder()

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
        let server = try await UnixSocketServer.adopt(
            listeningDescriptor: listenDescriptor, identity: identity, configuration: serverConfiguration,
            responder: ProfileOperationsUnavailable(),
            group: MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads), logger: logger)
        self.server.value = server
        return "serving \(configuration.clientSocketPath) (profile operations not built yet)"
    }

    func run() async throws {
        try? await gracefulShutdown()
        await server.value?.shutdown()
    }
}

/// Answers every profile operation `UNAVAILABLE` until the cache worker's store exists.
struct ProfileOperationsUnavailable: ServerResponder {
    func respond(to request: Envelope.OneOf_Message, connection: ConnectionInfo) -> ServerResponse {
        var error = ErrorMessage()
        error.code = .unavailable
        error.message = "\(request.name) is not served by this build of voxsyncd yet (only hello and ping are)"
        return .now(.error(error))
    }
}

/// A lock-protected optional server, set once in `prepare` and read in `run`.
final class NIOLockedValueBoxHolder: Sendable {
    private let box = NIOLockedValueBox<UnixSocketServer?>(nil)
    var value: UnixSocketServer? {
        get { box.withLockedValue { $0 } }
        set { box.withLockedValue { $0 = newValue } }
    }
}

import NIOConcurrencyHelpers
