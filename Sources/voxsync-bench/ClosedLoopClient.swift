import CVoxSys
import NIOCore
import VoxTransport
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// What a benchmark connection sends and how it recognises answers. The same client loop
/// drives voxsync and Redis, so two servers can be compared with identical client machinery.
protocol BenchDialect {
    /// Bytes to send once after connecting, whose answer is not measured (voxsync's hello).
    mutating func greeting() throws -> [UInt8]?
    /// The bytes of the next request.
    mutating func request() throws -> [UInt8]
    /// Consumes complete answers from `buffer` and returns how many there were.
    mutating func answers(in buffer: inout ByteBuffer) throws -> Int
}

/// A benchmark client built like redis-benchmark: one thread; N non-blocking connections in
/// one epoll set (a single connection simply blocks in recv); each connection sends a request,
/// waits for its answer, sends the next. No framework, no futures: it measures the server,
/// and with the same machinery for both servers it compares them fairly.
enum ClosedLoopClient {
    private final class Connection<Dialect: BenchDialect> {
        let fd: CInt
        var dialect: Dialect
        var inbound = ByteBuffer()
        var sentAt: UInt64 = 0
        var answered = 0
        var greeted: Bool
        let quota: Int

        init(fd: CInt, dialect: Dialect, greeted: Bool, quota: Int) {
            self.fd = fd
            self.dialect = dialect
            self.greeted = greeted
            self.quota = quota
        }

        func send(_ bytes: [UInt8]) throws {
            sentAt = monotonicNanoseconds()
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 && errno == EAGAIN { continue }  // tiny frames; the socket buffer is never full here
                guard n > 0 else { throw BenchError("send failed: \(String(cString: strerror(errno)))") }
                offset += n
            }
        }
    }

    static func run<Dialect: BenchDialect>(
        socketPath: String,
        clients: Int,
        requests: Int,
        dialect: () throws -> Dialect
    ) throws -> (samples: LatencySamples, seconds: Double) {
        precondition(requests >= clients, "fewer requests than connections")
        var connections: [Connection<Dialect>] = []
        defer { for connection in connections { close(connection.fd) } }
        for index in 0..<clients {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard SocketPath.withAddress(of: socketPath, { connect(fd, $0, $1) }) == 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw BenchError("cannot connect to \(socketPath): \(reason)")
            }
            // One connection needs no epoll: block in recv, as a simple client would (for at
            // most 10 s, as the epoll wait).
            if clients > 1 {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            } else {
                var limit = timeval(tv_sec: 10, tv_usec: 0)
                _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            }
            var state = try dialect()
            let greeting = try state.greeting()
            // `requests` in all: the first `requests % clients` connections send one more.
            let quota = requests / clients + (index < requests % clients ? 1 : 0)
            let connection = Connection(fd: fd, dialect: state, greeted: greeting == nil, quota: quota)
            connections.append(connection)
            if let greeting { try connection.send(greeting) }
        }
        let epoll = clients > 1 ? epoll_create1(0) : -1
        defer { if epoll >= 0 { close(epoll) } }
        for (index, connection) in connections.enumerated() where epoll >= 0 {
            var event = epoll_event()
            event.events = EPOLLIN.rawValue
            event.data.u64 = UInt64(index)
            guard epoll_ctl(epoll, EPOLL_CTL_ADD, connection.fd, &event) == 0 else {
                throw BenchError("epoll_ctl failed: \(String(cString: strerror(errno)))")
            }
        }

        var samples = LatencySamples(capacity: requests)
        var finished = 0
        let started = monotonicNanoseconds()
        for connection in connections where connection.greeted { try connection.send(try connection.dialect.request()) }
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        var ready: [Int] = []
        ready.reserveCapacity(64)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while finished < clients {
            ready.removeAll(keepingCapacity: true)
            if clients == 1 {
                ready.append(0)
            } else {
                let count = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), 10_000) }
                guard count > 0 else {
                    if count < 0 && errno == EINTR { continue }
                    throw BenchError(count == 0 ? "no answer from the server for 10 s" : "epoll_wait failed: \(String(cString: strerror(errno)))")
                }
                for event in events[0..<Int(count)] { ready.append(Int(event.data.u64)) }
            }
            for index in ready {
                let connection = connections[index]
                let n = chunk.withUnsafeMutableBytes { recv(connection.fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno == EAGAIN {
                    if clients == 1 { throw BenchError("no answer from the server for 10 s") }
                    continue
                }
                guard n > 0 else { throw BenchError(n == 0 ? "the server closed a connection" : "recv failed: \(String(cString: strerror(errno)))") }
                connection.inbound.writeBytes(chunk[0..<n])
                let count = try connection.dialect.answers(in: &connection.inbound)
                connection.inbound.discardReadBytes()
                guard count > 0 else { continue }  // part of an answer; wait for the rest
                if !connection.greeted {
                    connection.greeted = true  // the handshake's answer: not measured
                } else {
                    // One request is outstanding: more than one answer is a broken server.
                    guard count == 1 else { throw BenchError("\(count) answers arrived for one request") }
                    samples.record(monotonicNanoseconds() - connection.sentAt)
                    connection.answered += 1
                }
                if connection.answered < connection.quota {
                    try connection.send(try connection.dialect.request())
                } else {
                    finished += 1
                    if epoll >= 0 { _ = epoll_ctl(epoll, EPOLL_CTL_DEL, connection.fd, nil) }
                }
            }
        }
        return (samples, Double(monotonicNanoseconds() - started) / 1e9)
    }
}
