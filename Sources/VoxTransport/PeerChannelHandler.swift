import NIOCore
import VoxWire

/// Frames in both directions with no handshake: the supervisor's control channel to a worker
/// (a socketpair), where both ends are trusted processes of the same instance.
///
/// Every decoded envelope is handed to `onEnvelope` on the event loop; a bad frame or EOF
/// calls `onClose` once and closes the channel.
public final class PeerChannelHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = Envelope
    public typealias OutboundOut = ByteBuffer

    private var decoder = FrameDecoder()
    private var encoder = FrameEncoder()
    private var cumulation = ByteBuffer()
    private let onEnvelope: (Envelope) -> Void
    private let onClose: (String) -> Void
    private var closed = false

    public init(onEnvelope: @escaping (Envelope) -> Void, onClose: @escaping (String) -> Void) {
        self.onEnvelope = onEnvelope
        self.onClose = onClose
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        cumulation.writeBuffer(&bytes)
        do {
            while let envelope = try decoder.decode(&cumulation) { onEnvelope(envelope) }
            cumulation.discardReadBytes()
        } catch {
            finish("bad frame on the control channel: \(error.message)", context: context)
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var buffer = context.channel.allocator.buffer(capacity: 128)
        do {
            try encoder.encode(unwrapOutboundIn(data), into: &buffer)
            context.write(wrapOutboundOut(buffer), promise: promise)
        } catch {
            promise?.fail(error)
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        finish("the control channel closed", context: context)
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish("the control channel failed: \(error)", context: context)
    }

    private func finish(_ reason: String, context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        onClose(reason)
        context.close(promise: nil)
    }
}
