import NIOCore
import VoxWire

/// A request to another worker's socket whose answer the sender needs (the prefetch worker's
/// list to the cache, answered with what the cache loaded). `PeerSender` is for pushes whose
/// answers do not matter; this is for the rare call that waits, off any hot path.
///
/// Bounded: one connection, made lazily with a short handshake deadline, every request with a
/// deadline; a failed connect or request fails the call at once (the caller decides whether to
/// try again next time) and the broken connection is dropped, so the next call reconnects.
/// Nothing queues: a peer that is down costs each call one failed `connect`.
public actor PeerRequester {
    public let path: String
    private let clientName: String
    private let group: EventLoopGroup
    private let connectTimeout: TimeAmount
    private var connection: ClientConnection?

    public init(path: String, clientName: String, connectTimeout: TimeAmount = .seconds(1), group: EventLoopGroup) {
        self.path = path
        self.clientName = clientName
        self.connectTimeout = connectTimeout
        self.group = group
    }

    /// Sends `message` and returns the peer's answer (which may be an `Error` message), or
    /// throws a `TransportError` when the peer cannot be reached or does not answer in time.
    public func request(_ message: Envelope.OneOf_Message, timeout: TimeAmount) async throws -> Envelope.OneOf_Message {
        let connection = try await connected()
        do {
            let answer = try await connection.send(message, timeout: timeout).get()
            guard let message = answer.message else {
                throw TransportError(.protocolViolation, "\(path) answered with an empty envelope")
            }
            return message
        } catch {
            // A timed-out answer may still arrive and would answer the next request: start over.
            drop(connection)
            throw error
        }
    }

    /// Closes the connection, if any.
    public func close() {
        connection?.close()
        connection = nil
    }

    private func connected() async throws -> ClientConnection {
        if let connection, connection.isActive { return connection }
        connection = nil
        let made = try await ClientConnection.connect(path: path, clientName: clientName, handshakeTimeout: connectTimeout, group: group)
        connection = made
        return made
    }

    private func drop(_ broken: ClientConnection) {
        broken.close()
        if connection === broken { connection = nil }
    }
}
