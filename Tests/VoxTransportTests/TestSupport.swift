import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import VoxClient
import VoxTransport
import Testing
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory for one test's socket, short enough for sun_path.
func temporarySocketPath() -> String {
    let directory = "/tmp/vxt-" + String(UUID().uuidString.prefix(8))
    try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return directory + "/s.sock"
}

/// Polls `condition` every 10 ms for up to 5 s; records an issue if it never holds.
/// Tests wait for what they need to have happened instead of sleeping and hoping,
/// because the whole suite shares two cores with PostgreSQL and Redis in CI.
func waitFor(_ what: String, _ condition: () -> Bool) async throws {
    for _ in 0..<500 {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("timed out waiting for \(what)")
}

let testIdentity = ServerIdentity(serverName: "voxsync-tests", instanceID: "test-instance")

/// A service whose behaviour tests can steer: `get` answers NOT_FOUND at once, `stats`
/// answers after `statsDelay`, `put` waits until `releasePuts()`, `list` never answers.
final class TestResponder: ServerResponder {
    let statsDelay: TimeAmount
    private let state = NIOLockedValueBox<(calls: [String], gated: [EventLoopPromise<Envelope.OneOf_Message>], open: Bool)>(([], [], false))

    init(statsDelay: TimeAmount = .milliseconds(20)) {
        self.statsDelay = statsDelay
    }

    var calls: [String] { state.withLockedValue { $0.calls } }

    func releasePuts() {
        let gated = state.withLockedValue { state in
            defer { state.gated = []; state.open = true }
            return state.gated
        }
        for promise in gated { promise.succeed(.putOk(.init())) }
    }

    func respond(to request: Envelope.OneOf_Message, connection: ConnectionInfo) -> ServerResponse {
        state.withLockedValue { $0.calls.append(request.name) }
        switch request {
        case .get(let get):
            var error = ErrorMessage()
            error.code = .notFound
            error.message = "no speaker \(get.speakerID)"
            error.field = "speaker_id"
            return .now(.error(error))
        case .stats:
            let stats = { var stats = Voxsync_V1_StatsResponse(); stats.profiles = 7; return stats }()
            return .later(connection.eventLoop.scheduleTask(in: statsDelay) { .statsOk(stats) }.futureResult)
        case .put:
            let promise = connection.eventLoop.makePromise(of: Envelope.OneOf_Message.self)
            let open = state.withLockedValue { state -> Bool in
                if !state.open { state.gated.append(promise) }
                return state.open
            }
            if open { promise.succeed(.putOk(.init())) }
            return .later(promise.futureResult)
        case .list:
            return .later(connection.eventLoop.makePromise(of: Envelope.OneOf_Message.self).futureResult)
        default:
            return .now(.error(Envelope.error(requestID: 0, code: .invalidArgument, message: "not in tests").error))
        }
    }
}

/// The two servers of the same protocol: SwiftNIO channels (worker sockets, `client_io=nio`)
/// and the epoll loops of the cache worker's client socket. The protocol tests run on both.
enum ServerKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case nio, epoll
    var testDescription: String { rawValue }
}

func startServer(
    _ kind: ServerKind = .nio,
    path: String = temporarySocketPath(),
    configure: (inout ServerConfiguration) -> Void = { _ in },
    responder: TestResponder = TestResponder()
) async throws -> any SocketServing {
    var configuration = ServerConfiguration()
    configure(&configuration)
    switch kind {
    case .nio:
        return try await UnixSocketServer.bind(path: path, identity: testIdentity, configuration: configuration, responder: responder)
    case .epoll:
        return try await EpollSocketServer.bind(path: path, identity: testIdentity, configuration: configuration, responder: responder)
    }
}

func makeClient(_ path: String, configure: (inout VoxClientConfiguration) -> Void = { _ in }) -> VoxClient {
    var configuration = VoxClientConfiguration(socketPath: path)
    configure(&configuration)
    return VoxClient(configuration: configuration)
}

func frame(_ envelope: Envelope) -> [UInt8] {
    var encoder = FrameEncoder()
    var buffer = ByteBuffer()
    try! encoder.encode(envelope, into: &buffer)
    return Array(buffer.readableBytesView)
}

func helloFrame(id: UInt64 = 1) -> [UInt8] {
    var hello = Hello()
    hello.protocolVersion = WireProtocol.version
    hello.clientName = "raw"
    return frame(Envelope(requestID: id, .hello(hello)))
}

func rawFrameBytes(flags: UInt8, body: [UInt8]) -> [UInt8] {
    var buffer = ByteBuffer()
    buffer.writeInteger(UInt32(body.count + 1), endianness: .big)
    buffer.writeInteger(flags)
    buffer.writeBytes(body)
    return Array(buffer.readableBytesView)
}

/// Runs a blocking call on a GCD thread, not on Swift's cooperative pool: that pool has only as
/// many threads as cores (two here), and tests blocked in `recv` would starve every other test.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: body()) }
    }
}

/// A blocking socket that speaks bytes, not the protocol: it sends what a test gives it, even
/// what no well-behaved client would. `@unchecked Sendable`: each test uses its socket from
/// one task at a time; it crosses to a GCD thread only for a blocking read.
final class RawSocket: @unchecked Sendable {
    let fd: CInt

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let result = SocketPath.withAddress(of: path) { connect(fd, $0, $1) }
        guard result == 0 else { throw TransportError(.cannotConnect, String(cString: strerror(errno))) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return }
            offset += written
        }
    }

    /// Sends without blocking; returns how many bytes the kernel took (0 when the socket is full).
    func sendWithoutBlocking(_ bytes: [UInt8]) -> Int {
        let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        return max(written, 0)
    }

    func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Reads until the server closes (or 5 s pass) and decodes what came.
    func readUntilClosed() async -> (envelopes: [Envelope], closed: Bool) {
        await offPool { self.blockingReadUntilClosed() }
    }

    /// Reads until `count` envelopes arrived (or 5 s pass).
    func read(count: Int) async -> [Envelope] {
        await offPool { self.blockingRead(count: count) }
    }

    private func blockingReadUntilClosed() -> (envelopes: [Envelope], closed: Bool) {
        var received = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 65536)
        var closed = false
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { closed = true; break }
            if count < 0 { closed = (errno == ECONNRESET); break }
            received.writeBytes(chunk[0..<count])
        }
        return (decodeFrames(&received), closed)
    }

    private func blockingRead(count: Int) -> [Envelope] {
        var received = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 65536)
        var decoder = FrameDecoder()
        var out: [Envelope] = []
        while out.count < count {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received.writeBytes(chunk[0..<n])
            while let envelope = try? decoder.decode(&received) { out.append(envelope) }
        }
        return out
    }

    private func decodeFrames(_ buffer: inout ByteBuffer) -> [Envelope] {
        var decoder = FrameDecoder()
        var out: [Envelope] = []
        while let envelope = try? decoder.decode(&buffer) { out.append(envelope) }
        return out
    }
}
