import Foundation
import Testing
import VoxClient
import VoxCore
import VoxTransport
@testable import VoxMetrics
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// The Redis mirror against real Redis servers: a private one per test, which the test may stop
/// and start.
extension ServiceTests {
    @Suite(.serialized) struct RedisMirrorTests {
        /// A redis-server of the test's own on a Unix socket.
        final class PrivateRedis: @unchecked Sendable {
            let directory = "/tmp/vxr-" + String(UUID().uuidString.prefix(8))
            var socket: String { directory + "/redis.sock" }
            var url: RedisURL { try! RedisURL(parsing: "unix://\(socket)") }

            init() throws {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }

            func start() async throws {
                let status = try await runCommand([
                    "/usr/bin/redis-server", "--port", "0", "--unixsocket", socket, "--unixsocketperm", "700", "--daemonize", "yes",
                    "--save", "", "--appendonly", "no", "--dir", directory, "--pidfile", directory + "/redis.pid",
                ])
                guard status == 0 else { throw IntegrationError("redis-server did not start") }
                // The socket file appears before the server accepts on it: wait for an answer.
            try await eventually(timeout: .seconds(5), "redis answering PING") { (try? self.ask(["PING"])) == .string("PONG") }
            }

            func stop() {
                guard let text = try? String(contentsOfFile: directory + "/redis.pid", encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return }
                kill(pid, SIGKILL)
                while isAlive(pid) { usleep(10_000) }
                unlink(socket)
            }

            func ask(_ command: [String]) throws -> RedisConnection.Reply {
                try RedisConnection(url, timeout: .seconds(2)).pipeline([command])[0]
            }

            func number(_ key: String) throws -> Double? {
                if case .string(let text) = try ask(["GET", key]) { return Double(text) }
                return nil
            }

            func destroy() {
                stop()
                try? FileManager.default.removeItem(atPath: directory)
            }
        }

        static func put(_ client: VoxClient, _ id: String) async throws {
            var put = Voxsync_V1_PutRequest()
            put.profile.speakerID = id
            put.profile.embedding.values = (0..<192).map { Float($0 % 7) + 1 }
            guard case .putOk = try await client.send(.put(put)) else { throw IntegrationError("no put_ok") }
        }

        static func instanceID(_ service: ServiceProcess) throws -> String {
            try String(contentsOfFile: service.dataDirectory + "/instance-id", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        @Test func keysTTLsUniqueSamplesAndNoDoubleCountAfterAMetricsWorkerKill() async throws {
            let redis = try PrivateRedis()
            defer { redis.destroy() }
            try await redis.start()
            let service = try await ServiceProcess.started(settings: ["redis_url=unix://\(redis.socket)", "redis_prefix=jarvis", "metrics_address="])
            defer { service.cleanUp() }
            let instance = try Self.instanceID(service)
            let client = service.client()
            defer { client.close() }
            for index in 0..<25 { try await Self.put(client, "speaker-\(index)") }

            let putsKey = "jarvis:metrics:queries_total{type=\"put\"}:\(instance)"
            try await eventually(timeout: .seconds(10), "the counter mirrored") { try redis.number(putsKey) == 25 }
            let gaugeKey = "jarvis:metrics:queue_size:\(instance)"
            // No PostgreSQL: 25 rows wait in the outbox (the sync worker's gauge, a snapshot later).
            try await eventually(timeout: .seconds(10), "the queue gauge mirrored") { try redis.number(gaugeKey) == 25 }
            guard case .integer(let ttl) = try redis.ask(["TTL", gaugeKey]) else { throw IntegrationError("no TTL") }
            #expect(ttl > 3000 && ttl <= 3600, "values expire after an hour without news")
            #expect(try redis.ask(["SISMEMBER", "jarvis:instances", instance]) == .integer(1))

            // The prefetcher's statistics as one JSON value (the original ml_prefetch_stats):
            // the prefetch worker's threshold and what it learned, the cache's precision figures.
            let prefetchKey = "jarvis:metrics:prefetch:\(instance)"
            try await eventually(timeout: .seconds(10), "the prefetch statistics mirrored") {
                guard case .string(let text) = try redis.ask(["GET", prefetchKey]),
                      let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Double] else { return false }
                return object["prefetch_threshold"] == 0.7 && object["prefetch_loaded_total"] == 0
                    && object["prefetch_used_total"] == 0 && object["prefetch_wasted_total"] == 0
                    && object["prefetch_speakers"] != nil && object["prefetch_accesses_total"] != nil
            }

            // The queue size stays 25: equal samples must still be separate members.
            let series = "jarvis:metrics:ts:queue_size:\(instance)"
            try await eventually(timeout: .seconds(10), "three samples of an unchanged gauge") {
                guard case .integer(let count) = try redis.ask(["ZCARD", series]) else { return false }
                return count >= 3
            }

            let metricsPID = service.worker(.metrics, in: try await service.status()).pid
            kill(metricsPID, SIGKILL)
            try await eventually(timeout: .seconds(15), "a new metrics worker ready") {
                let worker = service.worker(.metrics, in: try await service.status())
                return worker.state == "ready" && worker.pid != metricsPID
            }
            try await Task.sleep(for: .seconds(2))  // a couple of ticks of the new mirror
            #expect(try redis.number(putsKey) == 25, "the new mirror continued the increments instead of adding everything again")
            try await Self.put(client, "one-more")
            try await eventually(timeout: .seconds(10), "the next write mirrored") { try redis.number(putsKey) == 26 }
        }

        @Test func redisDownThenBackTheMirrorCatchesUpAndMetricsNeverFail() async throws {
            let redis = try PrivateRedis()
            defer { redis.destroy() }
            try await redis.start()
            let port = try #require(LoopbackPort.unused())
            let service = try await ServiceProcess.started(settings: ["redis_url=unix://\(redis.socket)", "metrics_address=127.0.0.1:\(port)"])
            defer { service.cleanUp() }
            let instance = try Self.instanceID(service)
            let client = service.client()
            defer { client.close() }
            let putsKey = "voxsync:metrics:queries_total{type=\"put\"}:\(instance)"
            try await Self.put(client, "a")
            try await eventually(timeout: .seconds(10), "first mirror") { try redis.number(putsKey) == 1 }

            redis.stop()
            for index in 0..<5 { try await Self.put(client, "down-\(index)") }
            for _ in 0..<5 {
                #expect(try await MetricsIntegrationTests.scrape(port).status == 200, "/metrics serves while Redis is down")
                try await Task.sleep(for: .milliseconds(200))
            }
            try await redis.start()  // empty: it was started without persistence
            try await eventually(timeout: .seconds(20), "the mirror caught up with everything") { try redis.number(putsKey) == 6 }
            #expect(service.log.contains("Redis mirror unavailable"))
        }

        @Test func twoInstancesMirrorIntoOneRedis() async throws {
            let redis = try PrivateRedis()
            defer { redis.destroy() }
            try await redis.start()
            let a = try await ServiceProcess.started(settings: ["redis_url=unix://\(redis.socket)", "metrics_address="])
            defer { a.cleanUp() }
            let b = try await ServiceProcess.started(settings: ["redis_url=unix://\(redis.socket)", "metrics_address="])
            defer { b.cleanUp() }
            let ids = Set([try Self.instanceID(a), try Self.instanceID(b)])
            try await eventually(timeout: .seconds(10), "both instances in the set") {
                guard case .array(let members) = try redis.ask(["SMEMBERS", "voxsync:instances"]) else { return false }
                return Set(members.compactMap { if case .string(let id) = $0 { id } else { nil } }) == ids
            }
        }
    }
}

extension ServiceTests.RedisMirrorTests {
    @Test func timeSeriesAreTrimmedToTheLastSamplesInRealRedis() async throws {
        let redis = try PrivateRedis()
        defer { redis.destroy() }
        try await redis.start()
        let plan = RedisMirrorPlan(prefix: "trim", instance: "i", ttlSeconds: 60, samples: 5)
        let connection = try RedisConnection(redis.url, timeout: .seconds(2))
        var mirrored: [String: Double] = [:]
        for tick in 1...12 {
            // The same value every time: only the unique member keeps the samples apart.
            let (commands, totals) = plan.commands(counters: [("c_total", 1)], gauges: [("g", 3)], mirrored: mirrored,
                                                   nowMilliseconds: Int64(1_000 + tick), tick: UInt64(tick))
            mirrored = totals
            _ = try connection.pipeline([["MULTI"]] + commands + [["EXEC"]])
        }
        guard case .array(let members) = try redis.ask(["ZRANGE", plan.timeSeriesKey("g"), "0", "-1"]) else { throw IntegrationError("no series") }
        #expect(members == (8...12).map { .string("\(1_000 + $0):\($0):3") }, "the last five samples, each its own member")
        #expect(try redis.number(plan.key("c_total")) == 1, "a counter that stays put is added once")
    }
}
