import NIOCore
import NIOPosix
import VoxTransport
import VoxWire

/// A benchmark client built like redis-benchmark: every connection lives on one event-loop
/// thread, greets, then sends one request, waits for its answer, and sends the next, until
/// it has made its share of requests. It speaks the protocol from `Protocol/` directly (fresh
/// request id and encoding for every request), with no futures or tasks per request.
enum ClosedLoopClient {
    /// One thread for every connection, as redis-benchmark has.
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Runs `clients` connections making `requests` requests in all; returns the latencies and
    /// the wall time from the first request to the last answer.
    static func run(
        socketPath: String,
        clients: Int,
        requests: Int,
        makeRequest: @escaping @Sendable () -> Envelope.OneOf_Message
    ) async throws -> (samples: LatencySamples, seconds: Double) {
        let loop = group.next()
        let perClient = requests / clients
        var futures: [EventLoopFuture<LatencySamples>] = []
        var channels: [Channel] = []
        let started = monotonicNanoseconds()
        for _ in 0..<clients {
            let done = loop.makePromise(of: LatencySamples.self)
            let channel = try await ClientBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ClosedLoopHandler(requests: perClient, makeRequest: makeRequest, done: done))
                    }
                }
                .connect(unixDomainSocketPath: socketPath).get()
            channels.append(channel)
            futures.append(done.futureResult)
        }
        var all = LatencySamples(capacity: requests)
        for future in futures { all.merge(try await future.get()) }
        let seconds = Double(monotonicNanoseconds() - started) / 1e9
        for channel in channels { try? await channel.close() }
        return (all, seconds)
    }
}

private final class ClosedLoopHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let requests: Int
    private let makeRequest: @Sendable () -> Envelope.OneOf_Message
    private let done: EventLoopPromise<LatencySamples>
    private var encoder = FrameEncoder()
    private var decoder = FrameDecoder()
    private var cumulation = ByteBuffer()
    private var samples: LatencySamples
    private var nextID: UInt64 = 1
    private var answered = 0
    private var sentAt: UInt64 = 0

    init(requests: Int, makeRequest: @escaping @Sendable () -> Envelope.OneOf_Message, done: EventLoopPromise<LatencySamples>) {
        self.requests = requests
        self.makeRequest = makeRequest
        self.done = done
        self.samples = LatencySamples(capacity: requests)
    }

    func channelActive(context: ChannelHandlerContext) {
        var hello = Hello()
        hello.protocolVersion = WireProtocol.version
        hello.clientName = "voxsync-bench"
        send(.hello(hello), context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        cumulation.writeBuffer(&bytes)
        do {
            while let answer = try decoder.decode(&cumulation) {
                switch answer.message {
                case .helloOk:
                    sendNext(context: context)
                case .error(let error):
                    done.fail(TransportError(.protocolViolation, "server error: \(error.message)"))
                    context.close(promise: nil)
                    return
                default:
                    samples.record(monotonicNanoseconds() - sentAt)
                    answered += 1
                    if answered == requests {
                        done.succeed(samples)
                    } else {
                        sendNext(context: context)
                    }
                }
            }
            cumulation.discardReadBytes()
        } catch {
            done.fail(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(TransportError(.connectionClosed, "server closed the connection after \(answered) answers"))
    }

    private func sendNext(context: ChannelHandlerContext) {
        sentAt = monotonicNanoseconds()
        send(makeRequest(), context: context)
    }

    private func send(_ message: Envelope.OneOf_Message, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 1024)
        try! encoder.encode(Envelope(requestID: nextID, message), into: &buffer)
        nextID += 1
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }
}
