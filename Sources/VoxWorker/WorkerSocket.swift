import Logging
import NIOCore
import NIOPosix
import VoxCore
import VoxTransport

/// A worker's internal socket, `<run>/<role>.sock`: the same framing, handshake and uid check
/// as the client socket, internal messages allowed, few connections (only the service's own
/// processes and `voxsync` talk to it).
enum WorkerSocket {
    static func bind(
        _ role: ServiceRole, configuration: VoxsyncConfiguration, instanceID: String, responder: any ServerResponder,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) async throws -> UnixSocketServer {
        var serverConfiguration = ServerConfiguration()
        serverConfiguration.acceptsInternalMessages = true
        serverConfiguration.allowedUIDs.formUnion(configuration.allowedUIDs)
        serverConfiguration.maxConnections = 64
        return try await UnixSocketServer.bind(
            path: configuration.workerSocketPath(role),
            identity: ServerIdentity(
                serverName: "voxsyncd 0.1.0 (\(role.rawValue))", instanceID: instanceID,
                embeddingDimension: UInt32(configuration.embeddingDimension), embeddingModel: configuration.embeddingModel),
            configuration: serverConfiguration, responder: responder, group: group, logger: logger)
    }
}
