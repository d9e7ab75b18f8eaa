import Foundation
import VoxWire

/// The rules of one server-side connection, without the socket.
///
/// It decides, for every decoded envelope and every stream event, what the connection does:
/// greet, answer a ping, hand a request to the service, refuse it, or send an error and close.
/// It also decides when the connection may read more: while fewer than `maxInFlight` requests
/// wait for their answers to be written (any answer: a dispatched request's, a pong, a
/// refusal), and while the socket accepts writes (a client that does not read its answers
/// stops being read). The channel handler only carries out its actions.
public struct ServerConnectionStateMachine {
    public enum Action: Equatable {
        /// Answer the handshake with `HelloOk`.
        case sendHelloOk(requestID: UInt64)
        /// Answer a ping with this payload.
        case sendPong(requestID: UInt64, payload: Data)
        /// Hand the request to the service; the connection now has one more request in flight.
        case dispatch(requestID: UInt64, Envelope.OneOf_Message)
        /// Answer with an error and keep serving.
        case sendError(requestID: UInt64, code: ErrorCode, message: String)
        /// Answer with a connection-level error (request id 0) and close.
        case sendErrorAndClose(code: ErrorCode, message: String)
        /// Close without a word (the peer closed, or we already sent an error).
        case close
        /// Nothing to do.
        case none
    }

    private enum State {
        case awaitingHello
        case serving
        /// No new requests; close once every owed answer is written. `shutdown` says whether
        /// the server is going away (tell the client) or the client closed its side.
        case draining(shutdown: Bool)
        case closed
    }

    public let maxInFlight: Int
    /// Whether internal messages (worker control, metrics, ...) are served; false on the
    /// client socket.
    public let acceptsInternalMessages: Bool
    private var state: State = .awaitingHello
    /// Requests read whose answers were not yet written.
    public private(set) var inFlight = 0
    private var writable = true

    public init(maxInFlight: Int, acceptsInternalMessages: Bool = false) {
        precondition(maxInFlight > 0)
        self.maxInFlight = maxInFlight
        self.acceptsInternalMessages = acceptsInternalMessages
    }

    /// Whether the handler may decode (and so read) more frames now.
    public var mayReadMore: Bool {
        switch state {
        case .awaitingHello, .serving: inFlight < maxInFlight && writable
        case .draining, .closed: false
        }
    }

    public var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// A whole envelope arrived.
    public mutating func envelopeReceived(_ envelope: Envelope) -> Action {
        let id = envelope.requestID
        switch state {
        case .closed, .draining:
            return .none
        case .awaitingHello:
            guard case .hello(let hello)? = envelope.message else {
                state = .closed
                let got = envelope.message?.name ?? "an empty envelope"
                return .sendErrorAndClose(
                    code: .protocol, message: "the first message must be hello (protocol version \(WireProtocol.version)); got \(got)")
            }
            guard hello.protocolVersion == WireProtocol.version else {
                state = .closed
                return .sendErrorAndClose(
                    code: .protocol,
                    message: "client speaks protocol version \(hello.protocolVersion); this server speaks \(WireProtocol.version)")
            }
            guard hello.clientName.utf8.count <= 256 else {
                state = .closed
                return .sendErrorAndClose(code: .protocol, message: "hello.client_name is over 256 bytes")
            }
            state = .serving
            inFlight += 1
            return .sendHelloOk(requestID: id)
        case .serving:
            guard id != 0 else {
                state = .closed
                return .sendErrorAndClose(code: .protocol, message: "request_id 0 is reserved for the server; number requests from 1")
            }
            inFlight += 1
            guard let message = envelope.message else {
                return .sendError(
                    requestID: id, code: .invalidArgument,
                    message: "the envelope carries no message this server knows (it speaks protocol version \(WireProtocol.version))")
            }
            switch message {
            case .hello:
                return .sendError(requestID: id, code: .invalidArgument, message: "hello was already exchanged on this connection")
            case .ping(let ping):
                return .sendPong(requestID: id, payload: ping.payload)
            case let other where other.isInternal && !acceptsInternalMessages:
                return .sendError(
                    requestID: id, code: .invalidArgument,
                    message: "\(other.name) is an internal message; this socket serves client requests only")
            default:
                return .dispatch(requestID: id, message)
            }
        }
    }

    /// One owed answer was written.
    public mutating func responseWritten() -> Action {
        precondition(inFlight > 0, "an answer without a request")
        inFlight -= 1
        if case .draining(let shutdown) = state, inFlight == 0 {
            return finishDraining(shutdown: shutdown)
        }
        return .none
    }

    /// The socket's outgoing buffer crossed its high (false) or low (true) water mark.
    public mutating func writabilityChanged(_ isWritable: Bool) {
        writable = isWritable
    }

    /// The byte stream could not be decoded.
    public mutating func decodingFailed(_ error: WireError) -> Action {
        guard !isClosed else { return .none }
        state = .closed
        return .sendErrorAndClose(code: .protocol, message: error.message)
    }

    /// The peer shut its side down; `unreadBytes` of an unfinished frame remain.
    public mutating func inputEnded(unreadBytes: Int) -> Action {
        guard !isClosed else { return .none }
        if unreadBytes > 0 {
            state = .closed
            return .sendErrorAndClose(code: .protocol, message: FrameDecoder.truncated(remaining: unreadBytes).message)
        }
        return beginDraining(shutdown: false)
    }

    /// Nothing arrived for the idle timeout.
    public mutating func idleTimeoutFired(after timeout: Duration) -> Action {
        guard !isClosed else { return .none }
        if inFlight > 0 { return .none }  // a slow answer is not idleness
        state = .closed
        return .sendErrorAndClose(code: .unavailable, message: "connection idle for \(timeout); closing it, reconnect to go on")
    }

    /// The server is shutting down: finish what is in flight, accept nothing new, then close.
    public mutating func shutdownRequested() -> Action {
        guard !isClosed else { return .none }
        return beginDraining(shutdown: true)
    }

    /// The channel is gone.
    public mutating func channelClosed() {
        state = .closed
    }

    private mutating func beginDraining(shutdown: Bool) -> Action {
        if case .draining(let already) = state {
            state = .draining(shutdown: already || shutdown)
        } else {
            state = .draining(shutdown: shutdown)
        }
        if inFlight == 0, case .draining(let reason) = state {
            return finishDraining(shutdown: reason)
        }
        return .none
    }

    private mutating func finishDraining(shutdown: Bool) -> Action {
        state = .closed
        // A client whose connection the server ends is told why (request id 0), so it knows to
        // reconnect; one that closed its own side needs no word.
        return shutdown ? .sendErrorAndClose(code: .unavailable, message: "the server is shutting down; reconnect to go on") : .close
    }
}
