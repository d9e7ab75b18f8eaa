import NIOCore
import VoxWire

/// One request on its way out: the message, where its answer goes, and how long to wait.
public struct ClientRequest: Sendable {
    public var message: Envelope.OneOf_Message
    public var promise: EventLoopPromise<Envelope>
    public var timeout: TimeAmount?

    public init(message: Envelope.OneOf_Message, promise: EventLoopPromise<Envelope>, timeout: TimeAmount?) {
        self.message = message
        self.promise = promise
        self.timeout = timeout
    }
}

/// The client side of a connection: numbers requests, frames them, and matches answers to
/// requests in order (the server answers in request order).
///
/// A request that times out fails with `timedOut`, and the connection is closed: answers are
/// ordered, so a request stuck at the head would hold up every one behind it. Those behind it
/// fail with `connectionClosed`, which a caller may retry on a new connection.
final class ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ClientRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var requestID: UInt64
        var promise: EventLoopPromise<Envelope>
        var timer: Scheduled<Void>?
    }

    private var decoder: FrameDecoder
    private var encoder: FrameEncoder
    private var cumulation: ByteBuffer?
    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    private var nextRequestID: UInt64 = 1
    private var closedReason: TransportError?

    init(configuration: WireConfiguration) {
        self.decoder = FrameDecoder(configuration: configuration)
        self.encoder = FrameEncoder(configuration: configuration)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let closedReason {
            request.promise.fail(closedReason)
            promise?.fail(closedReason)
            return
        }
        let id = nextRequestID
        nextRequestID += 1
        var buffer = context.channel.allocator.buffer(capacity: 256)
        do {
            try encoder.encode(Envelope(requestID: id, request.message), into: &buffer)
        } catch {
            request.promise.fail(error)
            promise?.fail(error)
            return
        }
        var entry = Pending(requestID: id, promise: request.promise, timer: nil)
        if let timeout = request.timeout {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            entry.timer = context.eventLoop.scheduleTask(in: timeout) {
                let (handler, context) = bound.value
                handler.timedOut(requestID: id, after: timeout, context: context)
            }
        }
        pending.append(entry)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if cumulation == nil { cumulation = bytes } else { cumulation!.writeBuffer(&bytes) }
        guard var buffer = cumulation else { return }
        cumulation = nil
        while true {
            let envelope: Envelope
            do {
                guard let decoded = try decoder.decode(&buffer) else { break }
                envelope = decoded
            } catch {
                failAll(TransportError(.protocolViolation, "the server sent a bad frame: \(error.message)"), context: context)
                return
            }
            deliver(envelope, context: context)
            if closedReason != nil { return }
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            cumulation = buffer
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(TransportError(.connectionClosed, "the server closed the connection"), context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(TransportError(.connectionClosed, "the connection broke: \(error)"), context: context)
    }

    private func deliver(_ envelope: Envelope, context: ChannelHandlerContext) {
        if envelope.requestID == 0 {
            // A connection-level message: the server is about to close the connection.
            let reason: String
            if case .error(let error)? = envelope.message {
                reason = "the server closed the connection: \(error.message) (\(error.code))"
            } else {
                reason = "the server sent an unexpected \(envelope.message?.name ?? "empty") message with request id 0"
            }
            failAll(TransportError(.connectionClosed, reason), context: context)
            return
        }
        guard let head = pending.first, head.requestID == envelope.requestID else {
            let expected = pending.first.map { "\($0.requestID)" } ?? "none"
            failAll(
                TransportError(.protocolViolation, "answer for request \(envelope.requestID) arrived; expected \(expected)"),
                context: context)
            return
        }
        pending.removeFirst()
        head.timer?.cancel()
        head.promise.succeed(envelope)
    }

    private func timedOut(requestID: UInt64, after timeout: TimeAmount, context: ChannelHandlerContext) {
        guard let index = pending.firstIndex(where: { $0.requestID == requestID }) else { return }
        let entry = pending.remove(at: index)
        entry.promise.fail(TransportError(.timedOut, "no answer within \(timeout.nanoseconds / 1_000_000) ms"))
        failAll(TransportError(.connectionClosed, "an earlier request on this connection timed out"), context: context)
    }

    private func failAll(_ reason: TransportError, context: ChannelHandlerContext) {
        if closedReason == nil { closedReason = reason }
        while let entry = pending.popFirst() {
            entry.timer?.cancel()
            entry.promise.fail(reason)
        }
        context.close(promise: nil)
    }
}
