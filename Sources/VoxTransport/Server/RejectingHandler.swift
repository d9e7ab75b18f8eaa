import NIOCore
import VoxWire

/// Answers a connection that may not be served (peer not allowed, too many connections) with
/// one connection-level `Error` frame, then closes it. Nothing the peer sends is read.
final class RejectingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let code: ErrorCode
    private let message: String

    init(code: ErrorCode, message: String) {
        self.code = code
        self.message = message
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { reject(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        reject(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    private func reject(context: ChannelHandlerContext) {
        var encoder = FrameEncoder()
        var buffer = context.channel.allocator.buffer(capacity: 64 + message.utf8.count)
        try? encoder.encode(.error(requestID: 0, code: code, message: message), into: &buffer)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }
}
