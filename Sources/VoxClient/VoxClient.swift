import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import VoxCore
import VoxTransport
import VoxWire

/// The Swift client of voxsync.
///
/// One `VoxClient` keeps one connection and pipelines every call over it; it is safe to share
/// between tasks. It connects lazily, reconnects after the connection breaks, and resends
/// idempotent requests (get, verify, identify, list, stats, delete, ping) that were in flight
/// when it broke, so a cache-worker restart is invisible to readers. Writes (`put`) are never
/// resent: a broken connection fails them with `connectionLost`.
public final class VoxClient: Sendable {
    public let configuration: VoxClientConfiguration
    private let group: EventLoopGroup
    private let state = NIOLockedValueBox<State>(.idle)

    private enum State {
        case idle
        case connecting(Task<ClientConnection, Error>)
        case connected(ClientConnection)
        case closed
    }

    public init(configuration: VoxClientConfiguration, eventLoopGroup: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.group = eventLoopGroup
    }

    /// The server's handshake answer (dimension, instance id, ...), connecting if needed.
    public func serverHello() async throws(VoxClientError) -> HelloOk {
        let deadline = ContinuousClock.now + configuration.requestTimeout
        return try await connection(deadline: deadline).serverHello
    }

    /// Round trip of a ping; returns the payload the server echoed.
    @discardableResult
    public func ping(payload: Data = Data()) async throws(VoxClientError) -> Data {
        var ping = Ping()
        ping.payload = payload
        let answer = try await send(.ping(ping))
        guard case .pong(let pong) = answer else { throw unexpected(answer, for: "ping") }
        return pong.payload
    }

    /// Sends one request and returns the server's answer. Server `Error` answers are thrown as
    /// `.server(code)` errors.
    public func send(_ request: Envelope.OneOf_Message, timeout: Duration? = nil) async throws(VoxClientError) -> Envelope.OneOf_Message {
        let budget = timeout ?? configuration.requestTimeout
        let deadline = ContinuousClock.now + budget
        var retries = 0
        while true {
            let connection = try await connection(deadline: deadline)
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else {
                throw VoxClientError(.timedOut, "\(request.name): no answer within \(budget) (after \(retries) retries)")
            }
            do {
                let answer = try await connection.send(request, timeout: .nanoseconds(max(1, Int64(remaining.seconds * 1e9)))).get()
                if case .error(let error)? = answer.message {
                    throw VoxClientError(.server(error.code), error.message, field: error.field)
                }
                guard let message = answer.message else {
                    throw VoxClientError(.protocolViolation, "the server answered \(request.name) with an empty envelope")
                }
                return message
            } catch let error as VoxClientError {
                throw error
            } catch let error as TransportError {
                forget(connection)
                switch error.code {
                case .timedOut:
                    throw VoxClientError(.timedOut, "\(request.name): no answer within \(budget) (after \(retries) retries)")
                case .connectionClosed where request.isIdempotentRequest && retries < configuration.maxRetries && ContinuousClock.now < deadline:
                    retries += 1
                    continue
                case .connectionClosed:
                    if request.isIdempotentRequest {
                        throw VoxClientError(.unavailable, "\(request.name): \(error.message) (after \(retries) retries)")
                    }
                    throw VoxClientError(
                        .connectionLost,
                        "\(request.name): \(error.message) before the answer arrived; the write may or may not have been applied")
                default:
                    throw VoxClientError(.protocolViolation, "\(request.name): \(error.message)")
                }
            } catch {
                forget(connection)
                throw VoxClientError(.protocolViolation, "\(request.name): \(error)")
            }
        }
    }

    /// Closes the connection; later calls fail with `unavailable`.
    public func close() {
        let previous = state.withLockedValue { state -> State in
            defer { state = .closed }
            return state
        }
        switch previous {
        case .connected(let connection): connection.close()
        case .connecting(let task): task.cancel()
        case .idle, .closed: break
        }
    }

    // MARK: Connection management

    private func connection(deadline: ContinuousClock.Instant) async throws(VoxClientError) -> ClientConnection {
        enum Next {
            case ready(ClientConnection)
            case wait(Task<ClientConnection, Error>)
            case closed
        }
        let next: Next = state.withLockedValue { state in
            switch state {
            case .connected(let connection) where connection.isActive:
                return .ready(connection)
            case .connecting(let task):
                return .wait(task)
            case .closed:
                return .closed
            case .idle, .connected:
                let task = Task { try await self.connectWithRetry(deadline: deadline) }
                state = .connecting(task)
                return .wait(task)
            }
        }
        switch next {
        case .ready(let connection):
            return connection
        case .closed:
            throw VoxClientError(.unavailable, "the client was closed")
        case .wait(let task):
            do {
                let connection = try await task.value
                let stored = state.withLockedValue { state -> Bool in
                    switch state {
                    case .connecting:
                        state = .connected(connection)
                        return true
                    case .connected(let current):
                        return current === connection
                    case .idle, .closed:
                        return false
                    }
                }
                guard stored else {
                    // close() ran while this connection was being made.
                    connection.close()
                    throw VoxClientError(.unavailable, "the client was closed")
                }
                return connection
            } catch {
                state.withLockedValue { state in
                    if case .connecting = state { state = .idle }
                }
                throw error as? VoxClientError ?? VoxClientError(.unavailable, "\(error)")
            }
        }
    }

    private func connectWithRetry(deadline: ContinuousClock.Instant) async throws -> ClientConnection {
        let connectDeadline = min(deadline, ContinuousClock.now + configuration.connectTimeout)
        var attempt = 0
        while true {
            do {
                let remaining = ContinuousClock.now.duration(to: deadline)
                return try await ClientConnection.connect(
                    path: configuration.socketPath, clientName: configuration.clientName, wire: configuration.wire,
                    handshakeTimeout: .nanoseconds(max(1_000_000, Int64(remaining.seconds * 1e9))), group: group)
            } catch let error as TransportError where error.code == .cannotConnect || error.code == .connectionClosed {
                let pause = configuration.reconnectBackoff.delay(attempt: attempt, random: Double.random(in: 0..<1))
                guard ContinuousClock.now + pause < connectDeadline else {
                    throw VoxClientError(.unavailable, "\(error.message) (gave up after \(attempt + 1) attempts)")
                }
                attempt += 1
                try await Task.sleep(for: pause)
            } catch let error as TransportError where error.code == .timedOut {
                throw VoxClientError(.timedOut, "no answer to the handshake from \(configuration.socketPath): \(error.message)")
            } catch let error as TransportError {
                throw VoxClientError(.protocolViolation, error.message)
            }
        }
    }

    private func forget(_ connection: ClientConnection) {
        connection.close()
        state.withLockedValue { state in
            if case .connected(let current) = state, current === connection { state = .idle }
        }
    }

    private func unexpected(_ answer: Envelope.OneOf_Message, for request: String) -> VoxClientError {
        VoxClientError(.protocolViolation, "the server answered \(request) with \(answer.name)")
    }
}
