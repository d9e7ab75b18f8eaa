import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// `GET /metrics` (Prometheus text 0.0.4, or OpenMetrics when asked) and `GET /healthz` on a
/// loopback address. Anything else is 404; a method other than GET or HEAD is 405. Requests
/// are small and answered at once, so one event loop is plenty.
public final class MetricsHTTPServer: Sendable {
    private let channel: Channel

    /// `render` is called per scrape with the format the scraper asked for.
    public static func start(
        host: String, port: Int, group: EventLoopGroup, logger: Logger,
        render: @escaping @Sendable (PrometheusExposition.Format) -> String
    ) async throws -> MetricsHTTPServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(render: render))
                }
            }
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .bind(host: host, port: port).get()
        return MetricsHTTPServer(channel: channel)
    }

    private init(channel: Channel) {
        self.channel = channel
    }

    /// The bound port (useful with port 0).
    public var port: Int? { channel.localAddress?.port }

    public func close() async {
        try? await channel.close()
    }
}

/// One per connection, used only on its channel's event loop.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable (PrometheusExposition.Format) -> String
    private var head: HTTPRequestHead?

    init(render: @escaping @Sendable (PrometheusExposition.Format) -> String) {
        self.render = render
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break  // a GET carries no body worth reading; its bytes are discarded
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let status: HTTPResponseStatus
        var body: String
        var contentType = "text/plain; charset=utf-8"
        switch (head.method, path) {
        case (.GET, "/metrics"), (.HEAD, "/metrics"):
            let format = PrometheusExposition.Format(accept: head.headers.first(name: "accept"))
            status = .ok
            body = render(format)
            contentType = format.contentType
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            status = .ok
            body = "ok\n"
        case (_, "/metrics"), (_, "/healthz"):
            status = .methodNotAllowed
            body = "use GET\n"
        default:
            status = .notFound
            body = "voxsync serves /metrics and /healthz\n"
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(body.utf8.count))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }
}
