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

/// voxsync's protocol: framed protobuf envelopes, a fresh request id and encoding per request.
struct VoxsyncDialect: BenchDialect {
    var makeMessage: () -> Envelope.OneOf_Message
    private var encoder = FrameEncoder()
    private var decoder = FrameDecoder()
    private var nextID: UInt64 = 1

    init(makeMessage: @escaping () -> Envelope.OneOf_Message) {
        self.makeMessage = makeMessage
    }

    mutating func greeting() throws -> [UInt8]? {
        var hello = Hello()
        hello.protocolVersion = WireProtocol.version
        hello.clientName = "voxsync-bench"
        return try frame(.hello(hello))
    }

    mutating func request() throws -> [UInt8] { try frame(makeMessage()) }

    mutating func answers(in buffer: inout ByteBuffer) throws -> Int {
        var count = 0
        while let answer = try decoder.decode(&buffer) {
            if case .error(let error)? = answer.message { throw BenchError("server error: \(error.message)") }
            count += 1
        }
        return count
    }

    private mutating func frame(_ message: Envelope.OneOf_Message) throws -> [UInt8] {
        var buffer = ByteBuffer()
        try encoder.encode(Envelope(requestID: nextID, message), into: &buffer)
        nextID += 1
        return Array(buffer.readableBytesView)
    }
}

/// voxsync's protocol with every request framed once, before the clock starts, and sent in
/// turn — as redis-benchmark builds its commands once — so that a run measures the server,
/// not the client's protobuf encoding.
struct VoxsyncFrameRingDialect: BenchDialect {
    private let frames: [[UInt8]]
    private var next: Int
    private var hello = VoxsyncDialect { .ping(Ping()) }
    private var decoder = FrameDecoder()

    /// `start`: where in the ring this connection begins, so connections do not move in step.
    init(frames: [[UInt8]], start: Int = 0) {
        precondition(!frames.isEmpty)
        self.frames = frames
        self.next = start
    }

    /// `messages` framed with request ids 1, 2, ….
    static func frames(_ messages: [Envelope.OneOf_Message]) throws -> [[UInt8]] {
        var encoder = FrameEncoder()
        return try messages.enumerated().map { index, message in
            var buffer = ByteBuffer()
            try encoder.encode(Envelope(requestID: UInt64(index + 1), message), into: &buffer)
            return Array(buffer.readableBytesView)
        }
    }

    mutating func greeting() throws -> [UInt8]? { try hello.greeting() }

    mutating func request() throws -> [UInt8] {
        defer { next += 1 }
        return frames[next % frames.count]
    }

    mutating func answers(in buffer: inout ByteBuffer) throws -> Int {
        var count = 0
        while let answer = try decoder.decode(&buffer) {
            if case .error(let error)? = answer.message { throw BenchError("server error: \(error.message)") }
            count += 1
        }
        return count
    }
}

/// Redis's PING in RESP, answered `+PONG`.
struct RedisPingDialect: BenchDialect {
    private static let ping = Array("*1\r\n$4\r\nPING\r\n".utf8)
    private static let pong = Array("+PONG\r\n".utf8)

    mutating func greeting() throws -> [UInt8]? { nil }
    mutating func request() throws -> [UInt8] { Self.ping }

    mutating func answers(in buffer: inout ByteBuffer) throws -> Int {
        var count = 0
        while buffer.readableBytes >= Self.pong.count {
            guard buffer.readBytes(length: Self.pong.count) == Self.pong else { throw BenchError("unexpected Redis answer") }
            count += 1
        }
        return count
    }
}

/// A benchmark client built like redis-benchmark: one thread; N non-blocking connections in
/// one poll(2) set (a single connection simply blocks in recv); each connection sends a
/// request, waits for its answer, sends the next. No framework, no futures: it measures the
/// server, and with the same machinery for both servers it compares them fairly.
enum PollClosedLoopClient {
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
        dialect: () -> Dialect
    ) throws -> (samples: LatencySamples, seconds: Double) {
        precondition(requests >= clients, "fewer requests than connections")
        var connections: [Connection<Dialect>] = []
        for index in 0..<clients {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard SocketPath.withAddress(of: socketPath, { connect(fd, $0, $1) }) == 0 else {
                throw BenchError("cannot connect to \(socketPath): \(String(cString: strerror(errno)))")
            }
            // One connection needs no poll(2): block in recv, as a simple client would.
            if clients > 1 { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
            var state = dialect()
            let greeting = try state.greeting()
            // `requests` in all: the first `requests % clients` connections send one more.
            let quota = requests / clients + (index < requests % clients ? 1 : 0)
            let connection = Connection(fd: fd, dialect: state, greeted: greeting == nil, quota: quota)
            if let greeting { try connection.send(greeting) }
            connections.append(connection)
        }
        defer { for connection in connections { close(connection.fd) } }

        var samples = LatencySamples(capacity: requests)
        var finished = 0
        let started = monotonicNanoseconds()
        for connection in connections where connection.greeted { try connection.send(try connection.dialect.request()) }
        var pollSet = connections.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while finished < clients {
            let ready = clients == 1 ? 1 : poll(&pollSet, nfds_t(pollSet.count), 10_000)
            if clients == 1 { pollSet[0].revents = Int16(POLLIN) }
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
                let count = try connection.dialect.answers(in: &connection.inbound)
                connection.inbound.discardReadBytes()
                guard count > 0 else { continue }  // part of an answer; wait for the rest
                if !connection.greeted {
                    connection.greeted = true  // the handshake's answer: not measured
                } else {
                    samples.record(monotonicNanoseconds() - connection.sentAt)
                    connection.answered += count
                }
                if connection.answered < connection.quota {
                    try connection.send(try connection.dialect.request())
                } else {
                    finished += 1
                    pollSet[index].events = 0
                }
            }
        }
        return (samples, Double(monotonicNanoseconds() - started) / 1e9)
    }
}

/// Redis's GET of one key in RESP, answered with a bulk string (`$<n>\r\n<n bytes>\r\n`).
struct RedisGetDialect: BenchDialect {
    private let bytes: [UInt8]
    private let answer: [UInt8]

    /// `valueSize`: the bytes the key holds (set beforehand), so a reply is recognised whole.
    init(key: String, valueSize: Int) {
        bytes = Array("*2\r\n$3\r\nGET\r\n$\(key.utf8.count)\r\n\(key)\r\n".utf8)
        answer = Array("$\(valueSize)\r\n".utf8)
        replySize = answer.count + valueSize + 2
    }

    private let replySize: Int

    mutating func greeting() throws -> [UInt8]? { nil }
    mutating func request() throws -> [UInt8] { bytes }

    mutating func answers(in buffer: inout ByteBuffer) throws -> Int {
        var count = 0
        while buffer.readableBytes >= replySize {
            guard buffer.readableBytesView.prefix(answer.count).elementsEqual(answer) else {
                throw BenchError("unexpected Redis answer (is the key set to \(replySize - answer.count - 2) bytes?)")
            }
            buffer.moveReaderIndex(forwardBy: replySize)
            count += 1
        }
        return count
    }
}

/// Redis's SET of one key, answered `+OK`; sent once to give GET its value.
struct RedisSetDialect: BenchDialect {
    private let bytes: [UInt8]
    private static let ok = Array("+OK\r\n".utf8)

    init(key: String, value: [UInt8]) {
        bytes = Array("*3\r\n$3\r\nSET\r\n$\(key.utf8.count)\r\n\(key)\r\n$\(value.count)\r\n".utf8) + value + Array("\r\n".utf8)
    }

    mutating func greeting() throws -> [UInt8]? { nil }
    mutating func request() throws -> [UInt8] { bytes }

    mutating func answers(in buffer: inout ByteBuffer) throws -> Int {
        var count = 0
        while buffer.readableBytes >= Self.ok.count {
            guard buffer.readBytes(length: Self.ok.count) == Self.ok else { throw BenchError("unexpected Redis answer to SET") }
            count += 1
        }
        return count
    }
}
