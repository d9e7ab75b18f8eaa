import VoxWire

/// Why a call failed, with a message a person can act on.
public struct VoxClientError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// Could not reach the service within the connect timeout.
        case unavailable
        /// No answer within the request timeout.
        case timedOut
        /// The connection broke after a non-idempotent request was sent: it may or may not
        /// have been applied. Read the profile back before writing again.
        case connectionLost
        /// The server answered with an error.
        case server(ErrorCode)
        /// The server does not speak this client's protocol, or broke it.
        case protocolViolation
    }

    public var code: Code
    public var message: String
    /// For `.server` errors, the field the server named (e.g. "embedding").
    public var field: String

    public init(_ code: Code, _ message: String, field: String = "") {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { message }
}
