import NIOCore
import NIOPosix
import VoxWire

/// One connected, greeted connection to a voxsync socket. Requests may be sent from any
/// thread and pipelined; answers come back in order. When it breaks it stays broken: the
/// owner (VoxClient) makes a new one.
public final class ClientConnection: Sendable {
    public let channel: Channel
    /// The server's answer to the handshake.
    public let serverHello: HelloOk

    private init(channel: Channel, serverHello: HelloOk) {
        self.channel = channel
        self.serverHello = serverHello
    }

    /// Connects to `path` and performs the handshake.
    public static func connect(
        path: String,
        clientName: String,
        wire: WireConfiguration = .init(),
        handshakeTimeout: TimeAmount = .seconds(10),
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ClientConnection {
        try SocketPath.validate(path)
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ClientConnectionHandler(configuration: wire))
                    }
                }
                .connect(unixDomainSocketPath: path).get()
        } catch {
            throw TransportError(.cannotConnect, "cannot connect to \(path): \(Self.describe(error))")
        }
        var hello = Hello()
        hello.protocolVersion = WireProtocol.version
        hello.clientName = String(clientName.utf8.prefix(256)) ?? "client"
        let answer: Envelope
        do {
            answer = try await Self.send(.hello(hello), on: channel, timeout: handshakeTimeout).get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
        switch answer.message {
        case .helloOk(let ok) where ok.protocolVersion == WireProtocol.version:
            return ClientConnection(channel: channel, serverHello: ok)
        case .helloOk(let ok):
            channel.close(promise: nil)
            throw TransportError(
                .handshakeRejected,
                "the server speaks protocol version \(ok.protocolVersion); this client speaks \(WireProtocol.version)")
        case .error(let error):
            channel.close(promise: nil)
            throw TransportError(.handshakeRejected, "the server refused the handshake: \(error.message)")
        default:
            channel.close(promise: nil)
            throw TransportError(.protocolViolation, "the server answered hello with \(answer.message?.name ?? "nothing")")
        }
    }

    /// Sends one request; the future holds the server's answer envelope (which may be an
    /// `Error`), or fails with a `TransportError`.
    public func send(_ message: Envelope.OneOf_Message, timeout: TimeAmount?) -> EventLoopFuture<Envelope> {
        Self.send(message, on: channel, timeout: timeout)
    }

    public var isActive: Bool { channel.isActive }

    public func close() {
        channel.close(promise: nil)
    }

    private static func send(_ message: Envelope.OneOf_Message, on channel: Channel, timeout: TimeAmount?) -> EventLoopFuture<Envelope> {
        let promise = channel.eventLoop.makePromise(of: Envelope.self)
        channel.writeAndFlush(ClientRequest(message: message, promise: promise, timeout: timeout)).whenFailure { error in
            promise.fail(error as? TransportError ?? TransportError(.connectionClosed, "cannot send: \(describe(error))"))
        }
        return promise.futureResult
    }

    private static func describe(_ error: Error) -> String {
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode))
        }
        return "\(error)"
    }
}

#if canImport(Glibc)
import Glibc
#endif
