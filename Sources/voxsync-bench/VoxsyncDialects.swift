import NIOCore
import VoxWire

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
