/// Failures of the socket layer, with a message a person can act on.
public struct TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// The socket path is too long, relative where it must not be, or unusable.
        case invalidSocketPath
        /// Another server already listens on the socket path.
        case addressInUse
        /// Nothing listens on the socket path (no file, or connection refused).
        case cannotConnect
        /// The connection closed before the answer arrived.
        case connectionClosed
        /// No answer within the request's timeout.
        case timedOut
        /// The peer broke the protocol (wrong answer order, bad handshake, bad frames).
        case protocolViolation
        /// The server answered the handshake with an error or an incompatible version.
        case handshakeRejected
        /// A system call the server needs failed (epoll, eventfd, socket setup).
        case io
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
