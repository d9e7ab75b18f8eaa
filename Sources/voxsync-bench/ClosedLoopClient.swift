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
/// not the client's protobuf encoding. The frames are a ring each connection goes round
/// (verify, ping, identify: the same requests again and again), or requests the connections
/// share, each sent once (enrolls: every write a new speaker).
///
/// Answers are checked as the Redis dialects check theirs: by their frame and the Envelope
/// field the body carries (`AnswerScanner`), without decoding the rest of the body; an error,
/// a compressed frame or an unexpected message is decoded in full and ends the run with what
/// the server said. `validate` (a warm-up) decodes every answer and hands it over instead.
struct VoxsyncFrameRingDialect: BenchDialect {
    private enum Source {
        case ring([[UInt8]], next: Int)
        case shared(PreparedRequests)
    }

    private var source: Source
    private var hello = VoxsyncDialect { .ping(Ping()) }
    private var scanner: AnswerScanner
    private var decoder = FrameDecoder()
    private let validate: ((Envelope) throws -> Void)?
    private var helloAnswered = false

    /// `start`: where in the ring this connection begins, so connections do not move in step.
    /// `answer`: an answer of the kind every request gets (`.pong(Pong())`, `.verifyOk(…)`).
    init(frames: [[UInt8]], start: Int = 0, answer: Envelope.OneOf_Message, validate: ((Envelope) throws -> Void)? = nil) throws {
        precondition(!frames.isEmpty)
        self.source = .ring(frames, next: start)
        self.scanner = try AnswerScanner(expecting: answer)
        self.validate = validate
    }

    /// Takes its requests from `shared`, which the run's other connections take from too.
    init(shared: PreparedRequests, answer: Envelope.OneOf_Message) throws {
        self.source = .shared(shared)
        self.scanner = try AnswerScanner(expecting: answer)
        self.validate = nil
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
        switch source {
        case .ring(let frames, let next):
            source = .ring(frames, next: next + 1)
            return frames[next % frames.count]
        case .shared(let shared):
            return try shared.take()
        }
    }

    mutating func answers(in buffer: inout ByteBuffer) throws -> Int {
        var count = 0
        if !helloAnswered {
            guard let answer = try decoder.decode(&buffer) else { return 0 }
            guard case .helloOk? = answer.message else { throw BenchError("the handshake was answered \(answer.message?.name ?? "with nothing")") }
            helloAnswered = true
            count = 1
        }
        guard let validate else { return try count + scanner.answers(in: &buffer) }
        while let answer = try decoder.decode(&buffer) {
            if case .error(let error)? = answer.message { throw BenchError("server error: \(error.message)") }
            try validate(answer)
            count += 1
        }
        return count
    }
}

/// Requests built before the clock starts, which the connections of one run take in turn,
/// each once. The client is one thread, so a plain class suffices.
final class PreparedRequests {
    private let requests: [[UInt8]]
    private var next = 0

    init(_ requests: [[UInt8]]) { self.requests = requests }

    func take() throws -> [UInt8] {
        guard next < requests.count else { throw BenchError("the run asked for more than the \(requests.count) requests prepared") }
        defer { next += 1 }
        return requests[next]
    }
}

/// Counts whole answer frames of one kind in a stream: reads the frame's length and flags and
/// the number of the Envelope field its body carries, and skips the rest — the work a client
/// that only wants to know "answered, and not an error" does, and what the Redis dialects do
/// with RESP. Anything else (an `Error`, a compressed frame, another message) is decoded in
/// full: an error or another message throws with what it was.
struct AnswerScanner {
    private let expectedField: UInt64
    private var decoder = FrameDecoder()
    private let expectedCase: String

    init(expecting answer: Envelope.OneOf_Message) throws {
        var buffer = ByteBuffer()
        var encoder = FrameEncoder()
        try encoder.encode(Envelope(requestID: 1, answer), into: &buffer)
        guard let field = Self.messageField(in: buffer, frameLength: buffer.readableBytes - 4) else {
            throw BenchError("cannot find the message field of \(answer.name)")
        }
        expectedField = field
        expectedCase = answer.name
    }

    mutating func answers(in buffer: inout ByteBuffer) throws -> Int {
        var count = 0
        while let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self),
              buffer.readableBytes >= 4 + Int(length) {
            let flags = length > 0 ? buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self)! : 0
            if flags == 0, Self.messageField(in: buffer, frameLength: Int(length)) == expectedField {
                buffer.moveReaderIndex(forwardBy: 4 + Int(length))
            } else {
                guard let answer = try decoder.decode(&buffer) else { break }
                switch answer.message {
                case .error(let error)?: throw BenchError("server error: \(error.message)")
                case let message? where message.name == expectedCase: break
                case let message: throw BenchError("expected \(expectedCase), got \(message?.name ?? "an empty envelope")")
                }
            }
            count += 1
        }
        return count
    }

    /// The number of the first length-delimited field of the frame's body (the Envelope's
    /// message; `request_id`, a varint, may come first), or nil.
    private static func messageField(in buffer: ByteBuffer, frameLength: Int) -> UInt64? {
        var index = buffer.readerIndex + 5
        let end = buffer.readerIndex + 4 + frameLength
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while index < end, shift < 64, let byte = buffer.getInteger(at: index, as: UInt8.self) {
                index += 1
                value |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        while let tag = varint() {
            switch tag & 7 {
            case 0: guard varint() != nil else { return nil }
            case 2: return tag >> 3
            default: return nil
            }
        }
        return nil
    }
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

/// A Redis command whose reply is always the same status line: PING (`+PONG`) for the ping
/// benchmark, SET (`+OK`) sent once to give GET its value, or SET of a new key each time for
/// the durable enrolls' reference.
struct RedisFixedReplyDialect: BenchDialect {
    private let command: () throws -> [UInt8]
    private let reply: [UInt8]

    static func ping() -> Self {
        let command = Array("*1\r\n$4\r\nPING\r\n".utf8)
        return Self(command: { command }, reply: Array("+PONG\r\n".utf8))
    }

    static func set(key: String, value: [UInt8]) -> Self {
        let command = setCommand(key: key, value: value)
        return Self(command: { command }, reply: Array("+OK\r\n".utf8))
    }

    /// SETs built beforehand (`setCommand`), taken in turn from `prepared`, each once.
    static func set(_ prepared: PreparedRequests) -> Self {
        Self(command: prepared.take, reply: Array("+OK\r\n".utf8))
    }

    static func setCommand(key: String, value: [UInt8]) -> [UInt8] {
        Array("*3\r\n$3\r\nSET\r\n$\(key.utf8.count)\r\n\(key)\r\n$\(value.count)\r\n".utf8) + value + Array("\r\n".utf8)
    }

    mutating func greeting() throws -> [UInt8]? { nil }
    mutating func request() throws -> [UInt8] { try command() }

    mutating func answers(in buffer: inout ByteBuffer) throws -> Int {
        var count = 0
        while buffer.readableBytes >= reply.count {
            guard buffer.readBytes(length: reply.count) == reply else {
                throw BenchError("unexpected Redis answer (expected \(String(decoding: reply.dropLast(2), as: UTF8.self)))")
            }
            count += 1
        }
        return count
    }
}
