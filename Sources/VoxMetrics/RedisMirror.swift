import CHiredis
import Foundation
import Logging
import NIOConcurrencyHelpers
import VoxCore
import VoxWire

/// A Redis failure, with a message a person can act on.
struct RedisError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// One blocking hiredis connection, used by one thread.
final class RedisConnection {
    enum Reply: Equatable {
        case string(String)
        case integer(Int64)
        case array([Reply])
        case null
        case error(String)
    }

    private let context: UnsafeMutablePointer<redisContext>

    init(_ url: RedisURL, timeout: Duration) throws(RedisError) {
        let seconds = Int(timeout.components.seconds)
        let microseconds = Int(timeout.components.attoseconds / 1_000_000_000_000)
        let tv = timeval(tv_sec: seconds, tv_usec: microseconds)
        let context: UnsafeMutablePointer<redisContext>?
        switch url.endpoint {
        case .tcp(let host, let port): context = redisConnectWithTimeout(host, Int32(port), tv)
        case .unixSocket(let path): context = redisConnectUnixWithTimeout(path, tv)
        }
        guard let context else { throw RedisError("cannot allocate a Redis context") }
        guard context.pointee.err == 0 else {
            let message = Self.errorString(context)
            redisFree(context)
            throw RedisError("cannot connect to \(url): \(message)")
        }
        redisSetTimeout(context, tv)
        self.context = context
        if let password = url.password, case .error(let message) = try pipeline([["AUTH", password]])[0] {
            throw RedisError("Redis refused the password: \(message)")
        }
        if url.database != 0, case .error(let message) = try pipeline([["SELECT", String(url.database)]])[0] {
            throw RedisError("Redis refused database \(url.database): \(message)")
        }
    }

    deinit {
        redisFree(context)
    }

    /// Sends every command, then reads every reply (one round trip).
    func pipeline(_ commands: [[String]]) throws(RedisError) -> [Reply] {
        for command in commands {
            let arguments = command.map { Array($0.utf8) }
            var pointers: [UnsafePointer<CChar>?] = []
            var lengths: [Int] = []
            let buffers = arguments.map { bytes -> UnsafeMutablePointer<CChar> in
                let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
                bytes.withUnsafeBufferPointer { source in
                    source.withMemoryRebound(to: CChar.self) { buffer.update(from: $0.baseAddress!, count: bytes.count) }
                }
                return buffer
            }
            defer { buffers.forEach { $0.deallocate() } }
            for (buffer, bytes) in zip(buffers, arguments) {
                pointers.append(UnsafePointer(buffer))
                lengths.append(bytes.count)
            }
            guard redisAppendCommandArgv(context, Int32(command.count), &pointers, &lengths) == REDIS_OK else {
                throw RedisError("Redis: \(Self.errorString(context))")
            }
        }
        var replies: [Reply] = []
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                throw RedisError("Redis: \(Self.errorString(context))")
            }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            replies.append(Self.convert(reply))
            freeReplyObject(raw)
        }
        return replies
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> Reply {
        let value = reply.pointee
        switch Int32(value.type) {
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS: return .string(String(cString: value.str))
        case REDIS_REPLY_ERROR: return .error(String(cString: value.str))
        case REDIS_REPLY_INTEGER: return .integer(value.integer)
        case REDIS_REPLY_ARRAY: return .array((0..<Int(value.elements)).map { convert(value.element[$0]!) })
        default: return .null
        }
    }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

/// Mirrors the metrics into Redis once a second, on a thread of its own (hiredis blocks), so
/// a slow or dead Redis never touches `/metrics`. While Redis is down it reconnects with
/// backoff and logs once per outage; what it missed is caught up at the next tick, because
/// counters are mirrored as the difference to the totals already added.
public final class RedisMirror: Sendable {
    public struct Status: Sendable {
        public var connected = false
        public var ticks: UInt64 = 0
        public var failures: UInt64 = 0
        public var lastError = ""
    }

    private let url: RedisURL
    private let plan: RedisMirrorPlan
    private let snapshots: @Sendable () -> [Voxsync_V1_MetricsSnapshot]
    private let logger: Logger
    private let state = NIOLockedValueBox((stopped: false, status: Status()))
    private let interval: Duration

    public init(url: RedisURL, plan: RedisMirrorPlan, interval: Duration = .seconds(1), logger: Logger,
                snapshots: @escaping @Sendable () -> [Voxsync_V1_MetricsSnapshot]) {
        self.url = url
        self.plan = plan
        self.interval = interval
        self.logger = logger
        self.snapshots = snapshots
    }

    public var status: Status { state.withLockedValue { $0.status } }

    public func start() {
        let thread = Thread { self.loop() }
        thread.name = "voxsync-redis-mirror"
        thread.start()
    }

    public func stop() {
        state.withLockedValue { $0.stopped = true }
    }

    private func loop() {
        let backoff = ExponentialBackoff(initial: .milliseconds(200), maximum: .seconds(10))
        var connection: RedisConnection?
        var mirrored: [String: Double] = [:]
        var failures = 0
        var tick: UInt64 = 0
        while !state.withLockedValue({ $0.stopped }) {
            do throws(RedisError) {
                if connection == nil {
                    let fresh = try RedisConnection(url, timeout: .seconds(2))
                    // Continue the increments where the last mirror of this instance left off.
                    mirrored = [:]
                    if case .array(let pairs) = try fresh.pipeline([["HGETALL", plan.mirrorKey]])[0] {
                        for index in stride(from: 0, to: pairs.count - 1, by: 2) {
                            if case .string(let field) = pairs[index], case .string(let value) = pairs[index + 1], let number = Double(value) {
                                mirrored[field] = number
                            }
                        }
                    }
                    connection = fresh
                    if failures > 0 { logger.notice("Redis mirror reconnected", metadata: ["redis": "\(url)"]) }
                    failures = 0
                }
                tick += 1
                let (counters, gauges) = RedisMirrorPlan.processSeries(snapshots())
                let now = WallClock.nowMilliseconds()
                let (commands, totals) = plan.commands(
                    processCounters: counters.map { ($0.0, $0.1, $0.2) }, gauges: gauges.map { ($0.0, $0.1) },
                    mirrored: mirrored, nowMilliseconds: now, tick: tick)
                let replies = try connection!.pipeline([["MULTI"]] + commands + [["EXEC"]])
                switch replies.last {
                case .error(let message):
                    throw RedisError("Redis refused the mirror transaction: \(message)")
                case .array(let results):
                    // EXEC ran every command; one that failed (say WRONGTYPE on a key someone
                    // else wrote under this prefix) is reported, not passed over.
                    for case .error(let message) in results {
                        logger.error("a Redis mirror command failed; check for foreign keys under the prefix", metadata: ["error": "\(message)"])
                    }
                default:
                    throw RedisError("Redis answered the mirror transaction with \(String(describing: replies.last))")
                }
                mirrored = totals
                state.withLockedValue { $0.status.connected = true; $0.status.ticks += 1 }
                sleep(interval)
            } catch {
                connection = nil
                failures += 1
                state.withLockedValue { $0.status.connected = false; $0.status.failures += 1; $0.status.lastError = error.message }
                if failures == 1 {
                    logger.warning("Redis mirror unavailable; /metrics keeps serving, retrying with backoff", metadata: [
                        "redis": "\(url)", "error": "\(error.message)",
                    ])
                }
                sleep(backoff.delay(attempt: failures - 1, random: Double.random(in: 0..<1)))
            }
        }
    }

    private func sleep(_ duration: Duration) {
        // Short naps so that stop() is noticed within 100 ms.
        var left = duration
        while left > .zero, !state.withLockedValue({ $0.stopped }) {
            let nap = min(left, .milliseconds(100))
            Thread.sleep(forTimeInterval: nap.seconds)
            left -= nap
        }
    }
}
