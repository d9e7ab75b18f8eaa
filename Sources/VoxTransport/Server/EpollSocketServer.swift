import CVoxSys
import Logging
import NIOConcurrencyHelpers
import NIOCore
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// What the cache worker and the tests need of a socket server, whichever I/O it runs on.
public protocol SocketServing: Sendable {
    /// The socket path, when the server bound it (and so removes it on close).
    var path: String? { get }
    /// Connections open right now.
    var connectionCount: Int { get }
    /// Stops accepting, lets every connection finish the requests it has in flight (up to the
    /// configured grace period), then closes whatever is left.
    func shutdown() async
    /// Closes the listener and every connection at once, as a crash would (used by tests).
    func closeNow() async
}

extension UnixSocketServer: SocketServing {}

/// The client socket's server on `EpollEventLoop`s: the same protocol, limits and access
/// control as `UnixSocketServer` (peer uid checked with SO_PEERCRED, a connection limit,
/// requests in flight per connection bounded, idle connections closed, a graceful drain), with
/// each connection a bare descriptor instead of a SwiftNIO channel.
///
/// Why: a verify is a few microseconds of work, and on this 2-vCPU VM SwiftNIO's channel
/// machinery around it (pipeline, `NIOAny`, pending-write queue, read allocation) cost about
/// as much again; with the same frame codec, state machine and service, a ping round trip at
/// 50 clients went from ~90 000 to ~140 000 per second (README, Benchmarks). The worker-to-
/// worker sockets keep `UnixSocketServer`: they carry a few messages a second.
///
/// The first loop accepts, and hands the connections to the loops in turn (a connection stays
/// on its loop for its life).
public final class EpollSocketServer: SocketServing {
    /// The socket path, when this server bound it (and so removes it on close).
    public let path: String?
    private let listener: CInt
    private let loops: [EpollEventLoop]
    private let perLoop: [EpollLoopConnections]
    private let acceptor: EpollAcceptor
    private let shared: EpollServerShared
    private let stopped = NIOLockedValueBox(false)

    private init(path: String?, listener: CInt, shared: EpollServerShared, loopCount: Int) throws(TransportError) {
        self.path = path
        self.listener = listener
        self.shared = shared
        var loops: [EpollEventLoop] = []
        for index in 0..<loopCount {
            do {
                loops.append(try EpollEventLoop(
                    name: "vox-client-\(index)", busyPoll: TimeAmount(min(shared.configuration.busyPoll, .seconds(1)))))
            } catch {
                for loop in loops { loop.shutdownGracefully { _ in } }
                throw error
            }
        }
        self.loops = loops
        let perLoop = loops.map { EpollLoopConnections(loop: $0, shared: shared) }
        self.perLoop = perLoop
        self.acceptor = EpollAcceptor(listener: listener, loops: perLoop, shared: shared)
    }

    /// How many times the loops have busy-polled (`ServerConfiguration.busyPoll`); diagnostics.
    public var busyPolls: Int { loops.reduce(0) { $0 + $1.pollCount } }

    /// Serves an already bound and listening socket descriptor (inherited from the
    /// supervisor) on `loops` event loops. The server takes ownership of `descriptor`; the
    /// socket file is not removed on close, so clients queue in the supervisor's backlog while
    /// a worker restarts.
    public static func adopt(
        listeningDescriptor descriptor: CInt,
        identity: ServerIdentity,
        configuration: ServerConfiguration = .init(),
        responder: any ServerResponder,
        loops: Int = 2,
        logger: Logger = Logger(label: "voxsync.transport")
    ) async throws -> EpollSocketServer {
        let flags = fcntl(descriptor, F_GETFL)
        guard flags >= 0, fcntl(descriptor, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw TransportError(.io, "the inherited listening socket \(descriptor) is not usable: \(String(cString: strerror(errno)))")
        }
        return try await start(path: nil, listener: descriptor, identity: identity, configuration: configuration, responder: responder, loops: loops, logger: logger)
    }

    /// Binds `path` (mode `configuration.socketMode`) and serves it. A stale socket file left
    /// by a dead server is replaced; a live server on the path is an `addressInUse` error.
    public static func bind(
        path: String,
        identity: ServerIdentity,
        configuration: ServerConfiguration = .init(),
        responder: any ServerResponder,
        loops: Int = 2,
        logger: Logger = Logger(label: "voxsync.transport")
    ) async throws -> EpollSocketServer {
        try SocketPath.validate(path)
        if SocketPath.isListening(path) {
            throw TransportError(.addressInUse, "another server is already listening on \(path); stop it or choose another socket path")
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TransportError(.io, "socket() failed: \(String(cString: strerror(errno)))") }
        unlink(path)
        guard SocketPath.withAddress(of: path, { Glibc.bind(descriptor, $0, $1) }) == 0,
            chmod(path, configuration.socketMode) == 0,
            listen(descriptor, 1024) == 0
        else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw TransportError(.invalidSocketPath, "cannot listen on \(path): \(reason)")
        }
        return try await start(path: path, listener: descriptor, identity: identity, configuration: configuration, responder: responder, loops: loops, logger: logger)
    }

    private static func start(
        path: String?, listener: CInt, identity: ServerIdentity, configuration: ServerConfiguration,
        responder: any ServerResponder, loops: Int, logger: Logger
    ) async throws -> EpollSocketServer {
        let shared = EpollServerShared(identity: identity, configuration: configuration, responder: responder, logger: logger)
        let server: EpollSocketServer
        do {
            server = try EpollSocketServer(path: path, listener: listener, shared: shared, loopCount: max(1, loops))
        } catch {
            close(listener)
            if let path { unlink(path) }
            throw error
        }
        do {
            for connections in server.perLoop {
                try await connections.loop.submit { connections.startIdleCheck() }.get()
            }
            let acceptor = server.acceptor
            try await acceptor.loop.submit { try acceptor.start() }.get()
        } catch {
            await server.closeNow()
            throw error
        }
        return server
    }

    public var connectionCount: Int { shared.count }

    /// `shutdownConnections()`, then `stopLoops()`.
    public func shutdown() async {
        await shutdownConnections()
        await stopLoops()
    }

    /// Stops accepting, lets every connection finish the requests it has in flight (up to the
    /// configured grace period), then closes whatever is left; the loops keep running.
    public func shutdownConnections() async {
        guard await stopAccepting() else { return }
        for connections in perLoop {
            try? await connections.loop.submit { connections.drainAll() }.get()
        }
        let deadline = ContinuousClock.now + shared.configuration.shutdownGracePeriod
        while shared.count > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        await closeConnections()
    }

    /// Ends the loops' threads. Promises made on the loops must all be completed by then — a
    /// completion that arrives later is dropped, as on a SwiftNIO loop that was shut down — so
    /// the cache worker never calls this: its service may still complete a write's promise on
    /// a loop after the connections closed, and the process exits next.
    public func stopLoops() async {
        for loop in loops {
            try? await loop.shutdownGracefully()
        }
    }

    public func closeNow() async {
        guard await stopAccepting() else { return }
        await closeConnections()
        await stopLoops()
    }

    /// Returns false when the server was already stopped.
    private func stopAccepting() async -> Bool {
        guard stopped.withLockedValue({ stopped in defer { stopped = true }; return !stopped }) else { return false }
        let acceptor = self.acceptor
        try? await acceptor.loop.submit { acceptor.stop() }.get()
        close(listener)
        if let path { unlink(path) }
        return true
    }

    private func closeConnections() async {
        for connections in perLoop {
            try? await connections.loop.submit { connections.closeAll() }.get()
        }
    }
}

/// What every loop of one server shares: its settings, its service and the connection count
/// the limit is checked against.
final class EpollServerShared: Sendable {
    let identity: ServerIdentity
    let configuration: ServerConfiguration
    let responder: any ServerResponder
    let logger: Logger
    private let open = NIOLockedValueBox(0)

    init(identity: ServerIdentity, configuration: ServerConfiguration, responder: any ServerResponder, logger: Logger) {
        self.identity = identity
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
    }

    var count: Int { open.withLockedValue { $0 } }

    /// Counts a new connection, unless the limit is reached.
    func connectionOpened() -> Bool {
        open.withLockedValue { open in
            guard open < configuration.maxConnections else { return false }
            open += 1
            return true
        }
    }

    func connectionClosed() {
        open.withLockedValue { $0 -= 1 }
    }
}

/// One loop's share of a server: the connections it serves, checked for idleness. Touched
/// only on its loop's thread.
final class EpollLoopConnections: @unchecked Sendable {
    let loop: EpollEventLoop
    private let shared: EpollServerShared
    private var connections: [ObjectIdentifier: EpollConnection] = [:]
    private var idleCheck: RepeatedTask?
    /// The loop's read buffer: a read lands here and only a request's bytes are kept.
    var scratch = [UInt8](repeating: 0, count: 64 * 1024)

    init(loop: EpollEventLoop, shared: EpollServerShared) {
        self.loop = loop
        self.shared = shared
    }

    /// Idle detection without a timer per connection: each connection's last activity is
    /// checked four times per idle period, so an idle connection is closed between 1 and 1.25
    /// idle timeouts after its last frame.
    func startIdleCheck() {
        let timeout = TimeAmount(shared.configuration.idleTimeout)
        let period = TimeAmount.nanoseconds(max(timeout.nanoseconds / 4, 1_000_000))
        idleCheck = loop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            let now = NIODeadline.now()
            for connection in Array(self.connections.values) where now - connection.lastActivity >= timeout {
                connection.idleTimeoutFired(after: self.shared.configuration.idleTimeout)
            }
        }
    }

    /// Serves a new connection (already counted against the limit) on this loop.
    func serve(_ descriptor: CInt, peer: PeerCredentials) {
        let connection = EpollConnection(descriptor: descriptor, peer: peer, loop: loop, shared: shared, local: self)
        do {
            try connection.start()
        } catch {
            shared.logger.error("cannot watch a new connection: \(error)")
            close(descriptor)
            shared.connectionClosed()
            return
        }
        connections[ObjectIdentifier(connection)] = connection
    }

    /// Asks every connection to finish what it has in flight and close.
    func drainAll() {
        for connection in Array(connections.values) { connection.shutdownRequested() }
    }

    func closeAll() {
        idleCheck?.cancel()
        idleCheck = nil
        for connection in Array(connections.values) { connection.close() }
    }

    func remove(_ connection: EpollConnection) {
        connections[ObjectIdentifier(connection)] = nil
    }
}

/// Accepts on the first loop and hands each connection to the loops in turn, after checking
/// the peer's uid and the connection limit. Touched only on its loop's thread.
final class EpollAcceptor: EpollReadinessHandler, @unchecked Sendable {
    let loop: EpollEventLoop
    private let listener: CInt
    private let loops: [EpollLoopConnections]
    private let shared: EpollServerShared
    private var token: UInt64?
    private var stopped = false
    private var next = 0

    init(listener: CInt, loops: [EpollLoopConnections], shared: EpollServerShared) {
        self.listener = listener
        self.loops = loops
        self.shared = shared
        self.loop = loops[0].loop
    }

    func start() throws(TransportError) {
        guard token == nil, !stopped else { return }
        token = try loop.register(listener, events: EPOLLIN.rawValue, handler: self)
    }

    /// Stops watching the listener (for good, or for a pause when out of descriptors).
    func stop(pausing: Bool = false) {
        if !pausing { stopped = true }
        if let token {
            loop.deregister(listener, token: token)
            self.token = nil
        }
    }

    /// The listener is readable: accept what is waiting (a bounded number per wake-up, so one
    /// burst of connections does not hold up the answers of the others).
    func ready(_ events: UInt32) {
        for _ in 0..<64 where token != nil {
            let descriptor = voxsync_accept_nonblocking(listener)
            if descriptor < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK:
                    return
                case EINTR, ECONNABORTED:
                    continue
                default:
                    // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) or anything
                    // else: the listener stays readable, so stop watching it for a moment
                    // instead of spinning; clients wait in the backlog meanwhile.
                    let reason = String(cString: strerror(errno))
                    shared.logger.warning(
                        "cannot accept a connection: \(reason); pausing accepts for 100 ms",
                        metadata: ["open connections": "\(shared.count)"])
                    pauseAccepting()
                    return
                }
            }
            admit(descriptor)
        }
    }

    private func pauseAccepting() {
        stop(pausing: true)
        _ = loop.scheduleTask(in: .milliseconds(100)) {
            do {
                try self.start()
            } catch {
                self.shared.logger.error("cannot watch the listening socket again: \(error); retrying in 100 ms")
                self.pauseAccepting()
            }
        }
    }

    private func admit(_ descriptor: CInt) {
        var credentials = KernelUCred()
        var length = socklen_t(MemoryLayout<KernelUCred>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else {
            let reason = String(cString: strerror(errno))
            shared.logger.warning("closing a connection whose peer cannot be identified: \(reason)")
            close(descriptor)
            return
        }
        let peer = PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
        guard shared.configuration.allowedUIDs.contains(peer.uid) else {
            shared.logger.warning("refused a connection from a uid that is not allowed", metadata: ["peer": "\(peer)"])
            reject(descriptor, .permissionDenied, "uid \(peer.uid) may not use this voxsync socket; allowed uids: \(shared.configuration.allowedUIDs.sorted())")
            return
        }
        guard shared.connectionOpened() else {
            shared.logger.warning("refused a connection: connection limit reached", metadata: ["limit": "\(shared.configuration.maxConnections)"])
            reject(descriptor, .overloaded, "the server already serves \(shared.configuration.maxConnections) connections; close idle ones or retry later")
            return
        }
        let target = loops[next]
        next = (next + 1) % loops.count
        if target.loop === loop {
            target.serve(descriptor, peer: peer)
        } else {
            target.loop.execute { target.serve(descriptor, peer: peer) }
        }
    }

    /// One connection-level error frame, then close; nothing the peer sent is read. The frame
    /// is small and the socket new, so it fits its buffer.
    private func reject(_ descriptor: CInt, _ code: ErrorCode, _ message: String) {
        var encoder = FrameEncoder()
        var buffer = ByteBuffer()
        try? encoder.encode(.error(requestID: 0, code: code, message: message), into: &buffer)
        _ = buffer.withUnsafeReadableBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        close(descriptor)
    }
}
