import NIOCore
import NIOPosix
import VoxTransport
import VoxWire

/// The worker's end of its control channel to the supervisor: answers heartbeats from the
/// event loop (so a busy service does not look hung, but a stopped process does), passes a
/// shutdown request on, and reports when the supervisor goes away.
final class ControlChannel: Sendable {
    private let channel: Channel

    private init(channel: Channel) {
        self.channel = channel
    }

    static func open(
        descriptor: CInt,
        group: EventLoopGroup,
        onClose: @escaping @Sendable (String) -> Void,
        onShutdown: @escaping @Sendable () -> Void
    ) async throws -> ControlChannel {
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = PeerChannelHandler(
                        onEnvelope: { envelope in
                            switch envelope.message {
                            case .heartbeat(let heartbeat)?:
                                var ack = Voxsync_V1_HeartbeatAck()
                                ack.sequence = heartbeat.sequence
                                channel.writeAndFlush(Envelope(requestID: envelope.requestID, .heartbeatAck(ack)), promise: nil)
                            case .shutdown?:
                                onShutdown()
                            default:
                                break
                            }
                        },
                        onClose: onClose)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .withConnectedSocket(descriptor).get()
        return ControlChannel(channel: channel)
    }

    func send(_ envelope: Envelope) {
        channel.writeAndFlush(envelope, promise: nil)
    }
}
