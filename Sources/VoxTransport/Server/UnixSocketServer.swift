import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import VoxCore
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// A voxsync server on a Unix-domain socket: accepts connections, checks the peer's uid,
/// bounds connections, and runs one `ServerConnectionHandler` per connection.
///
/// It either binds a path itself or adopts an already-listening descriptor inherited from the
/// supervisor; in the second case closing the server leaves the supervisor's socket open, so
/// clients queue in its backlog while a worker restarts.
public final class UnixSocketServer: Sendable {
    /// The socket path, when this server bound it (and so removes it on close).
    public let path: String?
    private let serverChannel: Channel
    private let connections: ConnectionRegistry
    private let configuration: ServerConfiguration
    private let logger: Logger

    private init(path: String?, serverChannel: Channel, connections: ConnectionRegistry, configuration: ServerConfiguration, logger: Logger) {
        self.path = path
        self.serverChannel = serverChannel
        self.connections = connections
        self.configuration = configuration
        self.logger = logger
    }

    /// Binds `path` (mode `configuration.socketMode`) and serves it. A stale socket file left
    /// by a dead server is replaced; a live server on the path is an `addressInUse` error.
    public static func bind(
        path: String,
        identity: ServerIdentity,
        configuration: ServerConfiguration = .init(),
        responder: any ServerResponder,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "voxsync.transport")
    ) async throws -> UnixSocketServer {
        try SocketPath.validate(path)
        if SocketPath.isListening(path) {
            throw TransportError(.addressInUse, "another server is already listening on \(path); stop it or choose another socket path")
        }
        let connections = ConnectionRegistry()
        let channel = try await bootstrap(
            identity: identity, configuration: configuration, responder: responder,
            connections: connections, group: group, logger: logger
        ).bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        guard chmod(path, configuration.socketMode) == 0 else {
            let reason = String(cString: strerror(errno))
            try? await channel.close()
            throw TransportError(.invalidSocketPath, "cannot set mode of \(path): \(reason)")
        }
        return UnixSocketServer(path: path, serverChannel: channel, connections: connections, configuration: configuration, logger: logger)
    }

    /// Serves an already bound and listening socket descriptor (inherited from a parent).
    /// The server takes ownership of `descriptor`; the socket file is not removed on close.
    public static func adopt(
        listeningDescriptor descriptor: CInt,
        identity: ServerIdentity,
        configuration: ServerConfiguration = .init(),
        responder: any ServerResponder,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "voxsync.transport")
    ) async throws -> UnixSocketServer {
        let connections = ConnectionRegistry()
        let channel = try await bootstrap(
            identity: identity, configuration: configuration, responder: responder,
            connections: connections, group: group, logger: logger
        ).withBoundSocket(descriptor).get()
        return UnixSocketServer(path: nil, serverChannel: channel, connections: connections, configuration: configuration, logger: logger)
    }

    /// Connections open right now.
    public var connectionCount: Int { connections.count }

    /// Stops accepting, lets every connection finish the requests it has in flight (up to the
    /// configured grace period), then closes whatever is left and removes the socket file.
    public func shutdown() async {
        try? await serverChannel.close()
        if let path { unlink(path) }
        let open = connections.all()
        for channel in open {
            channel.pipeline.fireUserInboundEventTriggered(ServerConnectionHandler.ShutdownEvent())
        }
        let deadline = ContinuousClock.now + configuration.shutdownGracePeriod
        while connections.count > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        for channel in connections.all() { try? await channel.close() }
    }

    /// Closes the listener and every connection at once, as a crash would (used by tests).
    public func closeNow() async {
        try? await serverChannel.close()
        for channel in connections.all() { try? await channel.close() }
    }

    private static func bootstrap(
        identity: ServerIdentity,
        configuration: ServerConfiguration,
        responder: any ServerResponder,
        connections: ConnectionRegistry,
        group: EventLoopGroup,
        logger: Logger
    ) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // One read per readiness event, as Redis does: a request/answer client never has a
            // second frame waiting, and the extra read would only return EAGAIN.
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16384, maximum: 1 << 20))
            .childChannelInitializer { channel in
                PeerCredentials.of(channel).flatMapThrowing { peer in
                    let handlers = try Self.handlers(
                        for: channel, peer: peer, identity: identity, configuration: configuration,
                        responder: responder, connections: connections, logger: logger)
                    try channel.pipeline.syncOperations.addHandlers(handlers)
                }
            }
    }

    private static func handlers(
        for channel: Channel,
        peer: PeerCredentials,
        identity: ServerIdentity,
        configuration: ServerConfiguration,
        responder: any ServerResponder,
        connections: ConnectionRegistry,
        logger: Logger
    ) throws -> [ChannelHandler] {
        guard configuration.allowedUIDs.contains(peer.uid) else {
            logger.warning("refused a connection from a uid that is not allowed", metadata: ["peer": "\(peer)"])
            return [RejectingHandler(
                code: .permissionDenied,
                message: "uid \(peer.uid) may not use this voxsync socket; allowed uids: \(configuration.allowedUIDs.sorted())")]
        }
        guard connections.insert(channel, limit: configuration.maxConnections) else {
            logger.warning("refused a connection: connection limit reached", metadata: ["limit": "\(configuration.maxConnections)"])
            return [RejectingHandler(
                code: .overloaded,
                message: "the server already serves \(configuration.maxConnections) connections; close idle ones or retry later")]
        }
        channel.closeFuture.whenComplete { _ in connections.remove(channel) }
        return [
            ServerConnectionHandler(identity: identity, configuration: configuration, responder: responder, peer: peer, logger: logger),
        ]
    }
}

/// The open connections of one server, so that shutdown can reach them and the connection
/// limit can be enforced.
final class ConnectionRegistry: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    var count: Int { channels.withLockedValue { $0.count } }

    func insert(_ channel: Channel, limit: Int) -> Bool {
        channels.withLockedValue { open in
            guard open.count < limit else { return false }
            open[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func remove(_ channel: Channel) {
        _ = channels.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func all() -> [Channel] { channels.withLockedValue { Array($0.values) } }
}
