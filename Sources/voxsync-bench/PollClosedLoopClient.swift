import NIOCore
import VoxTransport
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// A benchmark client built like redis-benchmark: one thread, one poll(2) set, N
/// non-blocking connections; each connection sends a request, waits for its answer, sends the
/// next. It speaks the protocol straight from `Protocol/PROTOCOL.md` (framing by hand, a fresh
/// request id and encoding per request), so it measures the server, not a client framework.
enum PollClosedLoopClient {
    private final class Connection {
        let fd: CInt
        var encoder = FrameEncoder()
        var decoder = FrameDecoder()
        var inbound = ByteBuffer()
        var nextID: UInt64 = 1
        var sentAt: UInt64 = 0
        var answered = 0
        var greeted = false

        init(fd: CInt) { self.fd = fd }

        func send(_ message: Envelope.OneOf_Message) throws {
            var buffer = ByteBuffer()
            try encoder.encode(Envelope(requestID: nextID, message), into: &buffer)
            nextID += 1
            sentAt = monotonicNanoseconds()
            let bytes = Array(buffer.readableBytesView)
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 && errno == EAGAIN { continue }  // tiny frames; the socket buffer is never full here
                guard n > 0 else { throw BenchError("send failed: \(String(cString: strerror(errno)))") }
                offset += n
            }
        }
    }

    static func run(
        socketPath: String,
        clients: Int,
        requests: Int,
        makeRequest: () -> Envelope.OneOf_Message
    ) throws -> (samples: LatencySamples, seconds: Double) {
        let perClient = requests / clients
        var connections: [Connection] = []
        for index in 0..<clients {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard SocketPath.withAddress(of: socketPath, { connect(fd, $0, $1) }) == 0 else {
                throw BenchError("cannot connect to \(socketPath): \(String(cString: strerror(errno)))")
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = index
            connections.append(Connection(fd: fd))
        }
        defer { for connection in connections { close(connection.fd) } }

        var hello = Hello()
        hello.protocolVersion = WireProtocol.version
        hello.clientName = "voxsync-bench"
        for connection in connections { try connection.send(.hello(hello)) }

        var samples = LatencySamples(capacity: requests)
        var finished = 0
        var started: UInt64 = 0
        var pollSet = connections.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while finished < clients {
            let ready = poll(&pollSet, nfds_t(pollSet.count), 10_000)
            guard ready > 0 else {
                if ready < 0 && errno == EINTR { continue }
                throw BenchError("no answer from the server for 10 s")
            }
            for index in pollSet.indices where pollSet[index].revents != 0 {
                let connection = connections[index]
                let n = chunk.withUnsafeMutableBytes { recv(connection.fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EAGAIN { continue }
                guard n > 0 else { throw BenchError("the server closed a connection") }
                connection.inbound.writeBytes(chunk[0..<n])
                while let answer = try connection.decoder.decode(&connection.inbound) {
                    if case .error(let error)? = answer.message { throw BenchError("server error: \(error.message)") }
                    if !connection.greeted {
                        connection.greeted = true
                        if started == 0 { started = monotonicNanoseconds() }
                    } else {
                        samples.record(monotonicNanoseconds() - connection.sentAt)
                        connection.answered += 1
                    }
                    if connection.answered < perClient {
                        try connection.send(makeRequest())
                    } else {
                        finished += 1
                    }
                }
                connection.inbound.discardReadBytes()
            }
        }
        return (samples, Double(monotonicNanoseconds() - started) / 1e9)
    }
}
