import NIOCore

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
