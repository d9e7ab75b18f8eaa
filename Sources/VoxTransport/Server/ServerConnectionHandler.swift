import Logging
import NIOCore
import VoxCore
import VoxWire

/// The I/O shell of one server connection: bytes in, frames decoded, the state machine asked,
/// its actions carried out, answers written in request order.
///
/// Decoding happens here rather than in a separate `ByteToMessageHandler` so that backpressure
/// is exact: when `maxInFlightPerConnection` requests wait for answers the handler neither
/// decodes further frames nor asks the socket for more bytes, so what it holds is bounded by
/// one read plus one partial frame.
final class ServerConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Never
    typealias OutboundOut = ByteBuffer

    /// Sent down the pipeline to make the connection finish its work and close.
    struct ShutdownEvent {}

    private let identity: ServerIdentity
    private let configuration: ServerConfiguration
    private let responder: any ServerResponder
    private let peer: PeerCredentials
    private let logger: Logger

    private var machine: ServerConnectionStateMachine
    private var decoder: FrameDecoder
    private var encoder: FrameEncoder
    /// Answers not yet written, in request order (every answer: dispatched, pong, refusal).
    private var sequencer = ResponseSequencer<Envelope>()
    private var cumulation: ByteBuffer?
    private var readPending = false
    private var needsFlush = false
    private var inputClosed = false
    /// Set while `decodeAvailable` runs: answers written from inside it must not start a
    /// second, nested decode of the same bytes.
    private var decoding = false
    private var lastActivity = NIODeadline.now()
    private var idleCheck: RepeatedTask?

    init(identity: ServerIdentity, configuration: ServerConfiguration, responder: any ServerResponder, peer: PeerCredentials, logger: Logger) {
        self.identity = identity
        self.configuration = configuration
        self.responder = responder
        self.peer = peer
        self.logger = logger
        self.machine = ServerConnectionStateMachine(
            maxInFlight: configuration.maxInFlightPerConnection, acceptsInternalMessages: configuration.acceptsInternalMessages)
        self.decoder = FrameDecoder(configuration: configuration.wire)
        self.encoder = FrameEncoder(configuration: configuration.wire)
    }

    // MARK: Inbound

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startIdleCheck(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startIdleCheck(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        var bytes = unwrapInboundIn(data)
        if cumulation == nil {
            cumulation = bytes
        } else {
            cumulation!.writeBuffer(&bytes)
        }
        decodeAvailable(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        machine.writabilityChanged(context.channel.isWritable)
        resumeIfPossible(context: context)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            // Whole frames may still be buffered (NIO reads everything at EOF): serve them,
            // and call it truncation only if a partial frame is left.
            inputClosed = true
            decodeAvailable(context: context)
        case is ShutdownEvent:
            run(machine.shutdownRequested(), context: context)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
        machine.channelClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("connection error", metadata: ["peer": "\(peer)", "error": "\(error)"])
        machine.channelClosed()
        context.close(promise: nil)
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if machine.mayReadMore {
            context.read()
        } else {
            readPending = true
        }
    }

    // MARK: Work

    /// Idle detection without a timer per read or a promise per write: a timestamp updated by
    /// traffic, checked four times per idle period, so an idle connection is closed between
    /// 1 and 1.25 idle timeouts after its last frame.
    private func startIdleCheck(context: ChannelHandlerContext) {
        guard idleCheck == nil else { return }
        let timeout = TimeAmount(configuration.idleTimeout)
        let period = TimeAmount.nanoseconds(max(timeout.nanoseconds / 4, 1_000_000))
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            let (handler, context) = bound.value
            if NIODeadline.now() - handler.lastActivity >= timeout {
                handler.run(handler.machine.idleTimeoutFired(after: handler.configuration.idleTimeout), context: context)
            }
        }
    }

    private func decodeAvailable(context: ChannelHandlerContext) {
        guard !decoding else { return }
        decoding = true
        defer { decoding = false }
        guard var buffer = cumulation else {
            if inputClosed { run(machine.inputEnded(unreadBytes: 0), context: context) }
            return
        }
        cumulation = nil
        defer {
            if buffer.readableBytes > 0 && !machine.isClosed {
                buffer.discardReadBytes()
                cumulation = buffer
            }
        }
        while machine.mayReadMore {
            let envelope: Envelope
            do {
                guard let decoded = try decoder.decode(&buffer) else {
                    if inputClosed { run(machine.inputEnded(unreadBytes: buffer.readableBytes), context: context) }
                    return
                }
                envelope = decoded
            } catch {
                logger.info("closing connection after a bad frame", metadata: ["peer": "\(peer)", "error": "\(error)"])
                run(machine.decodingFailed(error), context: context)
                return
            }
            run(machine.envelopeReceived(envelope), context: context)
        }
    }

    /// Reading was paused (answers owed or socket full); pick up again if that is over.
    private func resumeIfPossible(context: ChannelHandlerContext) {
        guard machine.mayReadMore else { return }
        decodeAvailable(context: context)
        if readPending && machine.mayReadMore {
            readPending = false
            context.read()
        }
    }

    private func run(_ action: ServerConnectionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .sendHelloOk(let requestID):
            let ok = HelloOk(identity: identity, configuration: configuration)
            answer(sequencer.enqueue(), Envelope(requestID: requestID, .helloOk(ok)), context: context)
        case .sendPong(let requestID, let payload):
            var pong = Pong()
            pong.payload = payload
            answer(sequencer.enqueue(), Envelope(requestID: requestID, .pong(pong)), context: context)
        case .sendError(let requestID, let code, let message):
            answer(sequencer.enqueue(), .error(requestID: requestID, code: code, message: message), context: context)
        case .dispatch(let requestID, let message):
            dispatch(requestID: requestID, message, context: context)
        case .sendErrorAndClose(let code, let message):
            var buffer = context.channel.allocator.buffer(capacity: 64 + message.utf8.count)
            try? encoder.encode(.error(requestID: 0, code: code, message: message), into: &buffer)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
            needsFlush = false
        case .close:
            flushIfNeeded(context: context)
            context.close(promise: nil)
        }
    }

    private func dispatch(requestID: UInt64, _ message: Envelope.OneOf_Message, context: ChannelHandlerContext) {
        let info = ConnectionInfo(eventLoop: context.eventLoop, peer: peer)
        let ticket = sequencer.enqueue()
        switch responder.respond(to: message, connection: info) {
        case .now(let result):
            answer(ticket, Envelope(requestID: requestID, result), context: context)
        case .later(let future):
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            future.hop(to: context.eventLoop).whenComplete { result in
                let (handler, context) = bound.value
                let envelope: Envelope
                switch result {
                case .success(let message):
                    envelope = Envelope(requestID: requestID, message)
                case .failure(let error):
                    envelope = .error(requestID: requestID, code: .internal, message: "\(error)")
                }
                handler.answer(ticket, envelope, context: context)
                handler.flushIfNeeded(context: context)
            }
        }
    }

    /// An answer is ready: write it and every answer it was holding up, in request order, and
    /// count each one written, which may reopen reading.
    private func answer(_ ticket: ResponseSequencer<Envelope>.Ticket, _ envelope: Envelope, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        if sequencer.releaseIfFirst(ticket) {
            written(envelope, context: context)
        } else {
            for ready in sequencer.complete(ticket, with: envelope) { written(ready, context: context) }
        }
        resumeIfPossible(context: context)
    }

    private func written(_ envelope: Envelope, context: ChannelHandlerContext) {
        write(envelope, context: context)
        let next = machine.responseWritten()
        if next != .none { run(next, context: context) }
    }

    private func write(_ envelope: Envelope, context: ChannelHandlerContext) {
        lastActivity = .now()
        var buffer = context.channel.allocator.buffer(capacity: 256)
        do {
            try encoder.encode(envelope, into: &buffer)
        } catch {
            logger.error("answer cannot be framed", metadata: ["error": "\(error)"])
            buffer.clear()
            try? encoder.encode(
                .error(requestID: envelope.requestID, code: .internal, message: "the answer is too large to send: \(error.message)"),
                into: &buffer)
        }
        context.write(wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
    }

    private func flushIfNeeded(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }
}
