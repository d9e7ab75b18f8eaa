import NIOCore
import VoxWire

/// What a connection knows about its peer, passed to the service with every request.
public struct ConnectionInfo: Sendable {
    /// The connection's event loop; deferred answers should be futures on it.
    public let eventLoop: EventLoop
    /// Who connected, as the kernel reports it.
    public let peer: PeerCredentials
}

/// An answer that is ready now, or one that will be.
public enum ServerResponse: Sendable {
    /// Answered inline, on the event loop, with no allocation of a future: the hot path.
    case now(Envelope.OneOf_Message)
    /// Answered when the future completes (a write waiting for its commit). A failed future is
    /// answered `INTERNAL` with the error's description.
    case later(EventLoopFuture<Envelope.OneOf_Message>)
}

/// The service behind a socket: everything after the handshake that is not a ping.
///
/// Implementations are called on the connection's event loop and must not block it; work that
/// waits (disk, network) returns `.later`. Errors are answers too: return `.error(...)`.
public protocol ServerResponder: Sendable {
    func respond(to request: Envelope.OneOf_Message, connection: ConnectionInfo) -> ServerResponse
}
