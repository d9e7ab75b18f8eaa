import CVoxSys
import Logging
import NIOCore
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// The I/O shell of one client connection on an `EpollEventLoop`: bytes in, frames decoded,
/// the state machine asked, its actions carried out, answers written in request order. It
/// does what `ServerConnectionHandler` does on a SwiftNIO channel, with the same state
/// machine and sequencer, on a bare non-blocking descriptor.
///
/// Backpressure is the same: while `maxInFlightPerConnection` requests wait for answers, or
/// more than `EpollConnection.highWater` bytes of answers wait for the socket, it stops
/// watching for input (so it holds at most one read plus one partial frame) and resumes when
/// they are answered or the socket drains below `lowWater`.
///
/// Touched only on its loop's thread (`@unchecked Sendable` for the futures' callbacks, which
/// are hopped to that loop before they run).
final class EpollConnection: EpollReadinessHandler, @unchecked Sendable {
    /// Unwritten answer bytes beyond which the connection counts as not writable (as NIO's
    /// default write-buffer water marks).
    static let highWater = 64 * 1024
    static let lowWater = 32 * 1024

    let descriptor: CInt
    let peer: PeerCredentials
    private let loop: EpollEventLoop
    private let shared: EpollServerShared
    private let local: EpollLoopConnections
    private var token: UInt64 = 0

    private var machine: ServerConnectionStateMachine
    private var decoder: FrameDecoder
    private var encoder: FrameEncoder
    private var sequencer = ResponseSequencer<Envelope>()
    private var inbound = ByteBuffer()
    private var outbound = ByteBuffer()
    private var watching: UInt32 = 0
    private var inputClosed = false
    private var closeWhenWritten = false
    private(set) var isClosed = false
    private var writable = true
    /// Set while `decodeAvailable` runs: answers written from inside it must not start a
    /// second, nested decode of the same bytes.
    private var decoding = false
    private(set) var lastActivity: NIODeadline

    init(descriptor: CInt, peer: PeerCredentials, loop: EpollEventLoop, shared: EpollServerShared, local: EpollLoopConnections) {
        self.descriptor = descriptor
        self.peer = peer
        self.loop = loop
        self.shared = shared
        self.local = local
        self.machine = ServerConnectionStateMachine(
            maxInFlight: shared.configuration.maxInFlightPerConnection,
            acceptsInternalMessages: shared.configuration.acceptsInternalMessages)
        self.decoder = FrameDecoder(configuration: shared.configuration.wire)
        self.encoder = FrameEncoder(configuration: shared.configuration.wire)
        self.lastActivity = loop.iterationStart
    }

    /// Starts watching the descriptor for input.
    func start() throws(TransportError) {
        watching = EPOLLIN.rawValue
        token = try loop.register(descriptor, events: watching, handler: self)
    }

    // MARK: Readiness

    func ready(_ events: UInt32) {
        if events & EPOLLERR.rawValue != 0 {
            close()
            return
        }
        if events & EPOLLOUT.rawValue != 0 {
            writePending()
            if isClosed { return }
        }
        if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue) != 0 {
            if !inputClosed && machine.mayReadMore {
                readOnce()
            } else if events & EPOLLHUP.rawValue != 0 {
                // The peer closed both directions: nothing more comes in, and no answer can
                // reach it.
                close()
                return
            }
        }
        afterWork()
    }

    /// Every piece of work ends here: write what was answered, then watch for what the
    /// connection can take next.
    private func afterWork() {
        guard !isClosed else { return }
        writePending()
        guard !isClosed else { return }
        var wanted: UInt32 = 0
        if !inputClosed && machine.mayReadMore { wanted |= EPOLLIN.rawValue }
        if outbound.readableBytes > 0 { wanted |= EPOLLOUT.rawValue }
        if wanted != watching {
            watching = wanted
            loop.modify(descriptor, token: token, events: wanted)
        }
    }

    private func readOnce() {
        let received = local.scratch.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if received > 0 {
            lastActivity = loop.iterationStart
            _ = local.scratch.withUnsafeBytes { inbound.writeBytes(UnsafeRawBufferPointer(rebasing: $0[0..<received])) }
            decodeAvailable()
        } else if received == 0 {
            // Whole frames may still be buffered: serve them, and call it truncation only if
            // a partial frame is left.
            inputClosed = true
            decodeAvailable()
        } else {
            let error = errno
            guard error != EAGAIN && error != EWOULDBLOCK && error != EINTR else { return }
            shared.logger.debug("connection read failed", metadata: ["peer": "\(peer)", "error": "\(String(cString: strerror(error)))"])
            close()
        }
    }

    // MARK: Work (as ServerConnectionHandler)

    private func decodeAvailable() {
        guard !decoding, !isClosed else { return }
        decoding = true
        defer {
            decoding = false
            if inbound.readableBytes == 0 {
                // Keep a small buffer for the next request; give back one a large frame grew.
                if inbound.capacity > 64 * 1024 { inbound = ByteBuffer() } else { inbound.clear() }
            } else if inbound.readerIndex > 64 * 1024 {
                // A partial frame (or frames waiting for room in flight) after bytes already
                // decoded: drop the decoded ones, or a busy pipelined connection would keep
                // every byte it ever sent.
                inbound.discardReadBytes()
            }
        }
        while machine.mayReadMore && !isClosed {
            let envelope: Envelope
            do {
                guard let decoded = try decoder.decode(&inbound) else {
                    if inputClosed { run(machine.inputEnded(unreadBytes: inbound.readableBytes)) }
                    return
                }
                envelope = decoded
            } catch {
                shared.logger.info("closing connection after a bad frame", metadata: ["peer": "\(peer)", "error": "\(error)"])
                run(machine.decodingFailed(error))
                return
            }
            run(machine.envelopeReceived(envelope))
        }
    }

    /// Reading was paused (answers owed or socket full); pick up again if that is over.
    private func resumeIfPossible() {
        guard machine.mayReadMore else { return }
        decodeAvailable()
    }

    private func run(_ action: ServerConnectionStateMachine.Action) {
        switch action {
        case .none:
            break
        case .sendHelloOk(let requestID):
            let ok = HelloOk(identity: shared.identity, configuration: shared.configuration)
            answer(sequencer.enqueue(), Envelope(requestID: requestID, .helloOk(ok)))
        case .sendPong(let requestID, let payload):
            var pong = Pong()
            pong.payload = payload
            answer(sequencer.enqueue(), Envelope(requestID: requestID, .pong(pong)))
        case .sendError(let requestID, let code, let message):
            answer(sequencer.enqueue(), .error(requestID: requestID, code: code, message: message))
        case .dispatch(let requestID, let message):
            dispatch(requestID: requestID, message)
        case .sendErrorAndClose(let code, let message):
            try? encoder.encode(.error(requestID: 0, code: code, message: message), into: &outbound)
            closeWhenWritten = true
            writePending()
        case .close:
            closeWhenWritten = true
            writePending()
        }
    }

    private func dispatch(requestID: UInt64, _ message: Envelope.OneOf_Message) {
        let ticket = sequencer.enqueue()
        switch shared.responder.respond(to: message, connection: ConnectionInfo(eventLoop: loop, peer: peer)) {
        case .now(let result):
            answer(ticket, Envelope(requestID: requestID, result))
        case .later(let future):
            future.hop(to: loop).whenComplete { result in
                let envelope: Envelope
                switch result {
                case .success(let message):
                    envelope = Envelope(requestID: requestID, message)
                case .failure(let error):
                    envelope = .error(requestID: requestID, code: .internal, message: "\(error)")
                }
                self.answer(ticket, envelope)
                self.afterWork()
            }
        }
    }

    /// An answer is ready: queue it and every answer it was holding up, in request order, and
    /// count each one, which may reopen reading.
    private func answer(_ ticket: ResponseSequencer<Envelope>.Ticket, _ envelope: Envelope) {
        guard !isClosed else { return }
        if sequencer.releaseIfFirst(ticket) {
            written(envelope)
        } else {
            for ready in sequencer.complete(ticket, with: envelope) { written(ready) }
        }
        resumeIfPossible()
    }

    private func written(_ envelope: Envelope) {
        encode(envelope)
        let next = machine.responseWritten()
        if next != .none { run(next) }
    }

    private func encode(_ envelope: Envelope) {
        lastActivity = loop.iterationStart
        let mark = outbound.writerIndex
        do {
            try encoder.encode(envelope, into: &outbound)
        } catch {
            shared.logger.error("answer cannot be framed", metadata: ["error": "\(error)"])
            outbound.moveWriterIndex(to: mark)
            try? encoder.encode(
                .error(requestID: envelope.requestID, code: .internal, message: "the answer is too large to send: \(error.message)"),
                into: &outbound)
        }
    }

    /// Writes what the socket takes now; tracks writability as NIO's water marks do.
    private func writePending() {
        while outbound.readableBytes > 0 {
            let sent = outbound.withUnsafeReadableBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            let error = sent < 0 ? errno : 0
            if sent > 0 {
                outbound.moveReaderIndex(forwardBy: sent)
                lastActivity = loop.iterationStart  // a peer that reads is not idle
            } else if error == EINTR {
                continue
            } else if error == EAGAIN || error == EWOULDBLOCK {
                break
            } else {
                // EPIPE, ECONNRESET: the peer is gone; what it did not read cannot reach it.
                close()
                return
            }
        }
        if outbound.readableBytes == 0 {
            if outbound.capacity > 1 << 20 { outbound = ByteBuffer() } else { outbound.clear() }
            if closeWhenWritten {
                close()
                return
            }
        } else if outbound.readerIndex > Self.highWater {
            // Answers sent while more were queued behind them: drop the sent bytes.
            outbound.discardReadBytes()
        }
        if writable && outbound.readableBytes > Self.highWater {
            writable = false
            machine.writabilityChanged(false)
        } else if !writable && outbound.readableBytes < Self.lowWater {
            writable = true
            machine.writabilityChanged(true)
            resumeIfPossible()
        }
    }

    /// Closes the descriptor at once; answers still owed are dropped.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        loop.deregister(descriptor, token: token)
        _ = Glibc.close(descriptor)
        machine.channelClosed()
        local.remove(self)
        shared.connectionClosed()
    }

    /// The loop's idle check found no traffic for `timeout`: neither a request read nor an
    /// answer byte taken by the peer.
    func idleTimeoutFired(after timeout: Duration) {
        guard !isClosed else { return }
        if closeWhenWritten {
            // Its last answers (or the error that ends it) have waited a whole idle period for
            // a peer that does not read them: close, so it stops holding a connection slot.
            close()
            return
        }
        run(machine.idleTimeoutFired(after: timeout))
        afterWork()
    }

    /// The server is shutting down: finish what is in flight, then close.
    func shutdownRequested() {
        guard !isClosed else { return }
        run(machine.shutdownRequested())
        afterWork()
    }
}
