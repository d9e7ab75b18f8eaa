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
    /// An answer waiting for its turn; `dispatched` answers count against in-flight.
    private struct Answer {
        var envelope: Envelope
        var dispatched: Bool
    }

    private var sequencer = ResponseSequencer<Answer>()
    private var cumulation: ByteBuffer?
    private var readPending = false
    private var needsFlush = false
    /// Bytes arrived or answers left since the idle check last ran.
    private var activeSinceLastCheck = true
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

    func channelActive(context: ChannelHandlerContext) {
        startIdleCheck(context: context)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startIdleCheck(context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        activeSinceLastCheck = true
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

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            run(machine.inputEnded(unreadBytes: cumulation?.readableBytes ?? 0), context: context)
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

    /// Idle detection without a timer per read or a promise per write (as IdleStateHandler
    /// would have): a flag set by traffic, checked once per idle period. A connection is
    /// closed after one to two idle periods without traffic.
    private func startIdleCheck(context: ChannelHandlerContext) {
        guard idleCheck == nil else { return }
        let period = TimeAmount.nanoseconds(Int64(configuration.idleTimeout.seconds * 1e9))
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            let (handler, context) = bound.value
            if handler.activeSinceLastCheck {
                handler.activeSinceLastCheck = false
            } else {
                handler.run(handler.machine.idleTimeoutFired(after: handler.configuration.idleTimeout), context: context)
            }
        }
    }

    private func decodeAvailable(context: ChannelHandlerContext) {
        guard var buffer = cumulation else { return }
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
                guard let decoded = try decoder.decode(&buffer) else { return }
                envelope = decoded
            } catch {
                logger.info("closing connection after a bad frame", metadata: ["peer": "\(peer)", "error": "\(error)"])
                run(machine.decodingFailed(error), context: context)
                return
            }
            run(machine.envelopeReceived(envelope), context: context)
        }
    }

    private func run(_ action: ServerConnectionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .sendHelloOk(let requestID):
            var ok = HelloOk()
            ok.protocolVersion = WireProtocol.version
            ok.serverName = identity.serverName
            ok.instanceID = identity.instanceID
            ok.embeddingDimension = identity.embeddingDimension
            ok.embeddingModel = identity.embeddingModel
            ok.maxFrameBytes = UInt64(configuration.wire.maxFrameBytes)
            ok.maxInFlight = UInt32(configuration.maxInFlightPerConnection)
            answerNow(Envelope(requestID: requestID, .helloOk(ok)), context: context)
        case .sendPong(let requestID, let payload):
            var pong = Pong()
            pong.payload = payload
            answerNow(Envelope(requestID: requestID, .pong(pong)), context: context)
        case .sendError(let requestID, let code, let message):
            answerNow(.error(requestID: requestID, code: code, message: message), context: context)
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
        case .now(let answer) where sequencer.pendingCount == 1:
            // The hot path: nothing waits ahead of this answer, so skip the reordering.
            _ = sequencer.complete(ticket, with: Answer(envelope: Envelope(requestID: requestID, answer), dispatched: true))
            write(Envelope(requestID: requestID, answer), context: context)
            _ = machine.responseWritten()
        case .now(let answer):
            complete(ticket, Envelope(requestID: requestID, answer), context: context)
        case .later(let future):
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            future.hop(to: context.eventLoop).whenComplete { result in
                let (handler, context) = bound.value
                let answer: Envelope
                switch result {
                case .success(let message):
                    answer = Envelope(requestID: requestID, message)
                case .failure(let error):
                    answer = .error(requestID: requestID, code: .internal, message: "\(error)")
                }
                handler.complete(ticket, answer, context: context)
                handler.flushIfNeeded(context: context)
            }
        }
    }

    /// An answer to a dispatched request: release it (and any held behind it), then let the
    /// machine count it, which may reopen reading.
    private func complete(_ ticket: ResponseSequencer<Answer>.Ticket, _ answer: Envelope, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        let wasBlocked = !machine.mayReadMore
        release(sequencer.complete(ticket, with: Answer(envelope: answer, dispatched: true)), context: context)
        if wasBlocked && machine.mayReadMore {
            decodeAvailable(context: context)
            if readPending && machine.mayReadMore {
                readPending = false
                context.read()
            }
        }
    }

    /// Answers that need no service call (hello, ping, refusals) still wait behind earlier
    /// dispatched requests, to keep answers in request order.
    private func answerNow(_ envelope: Envelope, context: ChannelHandlerContext) {
        if sequencer.pendingCount == 0 {
            write(envelope, context: context)
        } else {
            let ticket = sequencer.enqueue()
            release(sequencer.complete(ticket, with: Answer(envelope: envelope, dispatched: false)), context: context)
        }
    }

    private func release(_ answers: [Answer], context: ChannelHandlerContext) {
        for answer in answers {
            write(answer.envelope, context: context)
            if answer.dispatched {
                let next = machine.responseWritten()
                if next != .none { run(next, context: context) }
            }
        }
    }

    private func write(_ envelope: Envelope, context: ChannelHandlerContext) {
        activeSinceLastCheck = true
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
