import ArgumentParser
import Foundation
import VoxClient
import VoxWire

/// Ping round trips over the Unix socket against a real voxsyncd, side by side with
/// redis-benchmark's PING_MBULK against a real redis-server on a Unix socket.
struct PingBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Ping round trip: voxsyncd vs redis-server, both on Unix sockets, same client counts.")

    @Option(help: "Path of voxsyncd (default: next to voxsync-bench).")
    var voxsyncd: String?

    @Option(help: "Socket of a running redis-server to compare with; without it the Redis rows are skipped.")
    var redisSocket: String?

    @Option(help: "Comma-separated client counts (1-1000 each).")
    var clients: String = "1,50"

    @Option(help: "Requests per row (1000-10000000).")
    var requests: Int = 100_000

    @Option(help: "Alternating rounds per client count, odd; each row shows its median round (1-9).")
    var rounds: Int = 3

    func validate() throws {
        guard (1000...10_000_000).contains(requests) else {
            throw ValidationError("--requests must be between 1000 and 10000000; got \(requests)")
        }
        _ = try clientCounts()
        guard (1...9).contains(rounds), rounds % 2 == 1 else { throw ValidationError("--rounds must be odd (a median round) and between 1 and 9; got \(rounds)") }
    }

    private func clientCounts() throws -> [Int] {
        let counts = clients.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ (1...1000).contains($0) }) else {
            throw ValidationError("--clients must be numbers from 1 to 1000 separated by commas; got '\(clients)'")
        }
        return counts
    }

    func run() async throws {
        let daemon = try DaemonProcess(executable: voxsyncd ?? DaemonProcess.siblingExecutable)
        defer { daemon.stop() }
        var measured = Rounds()
        // Pings framed once with request ids 1…1024 and sent in turn, as redis-benchmark
        // builds its command once.
        let pings = try VoxsyncFrameRingDialect.frames(Array(repeating: .ping(Ping()), count: 1024))
        for count in try clientCounts() {
            // Warm up both sides (page faults, allocator, branch predictors) before measuring,
            // decoding every answer of the warm-up: each must be a pong.
            _ = try ClosedLoopClient.run(socketPath: daemon.socketPath, clients: count, requests: min(requests, 10_000)) {
                try VoxsyncFrameRingDialect(frames: pings, answer: .pong(Pong())) { answer in
                    guard case .pong? = answer.message else { throw BenchError("expected a pong, got \(answer.message?.name ?? "nothing")") }
                }
            }
            for _ in 0..<rounds {
                let vox = try ClosedLoopClient.run(socketPath: daemon.socketPath, clients: count, requests: requests) {
                    try VoxsyncFrameRingDialect(frames: pings, answer: .pong(Pong()))
                }
                measured.add("voxsyncd · closed-loop client", clients: count, samples: vox.samples, seconds: vox.seconds)
                if let redisSocket {
                    let redis = try ClosedLoopClient.run(socketPath: redisSocket, clients: count, requests: requests) { RedisFixedReplyDialect.ping() }
                    measured.add("redis-server · the same closed-loop client (RESP PING)", clients: count, samples: redis.samples, seconds: redis.seconds)
                }
                let library = try await viaVoxClient(socketPath: daemon.socketPath, clients: count)
                measured.add("voxsyncd · VoxClient (async API)", clients: count, .init(
                    requestsPerSecond: library.rps, p50: library.samples.percentileMicroseconds(50), p99: library.samples.percentileMicroseconds(99)))
                if let redisSocket {
                    let row = try RedisBenchmark(socketPath: redisSocket).run(test: "ping", clients: count, requests: requests)
                    measured.add("redis-server · redis-benchmark PING_MBULK", clients: count, .init(
                        requestsPerSecond: row.requestsPerSecond, p50: row.p50Microseconds, p99: row.p99Microseconds))
                }
            }
        }
        print("Ping round trip over a Unix socket (\(requests) requests per round, release build; \(rounds) alternating rounds, median shown)")
        print()
        print(measured.table().render())
    }

    /// The same load through the public client library: one shared VoxClient, `clients` tasks
    /// each awaiting one ping at a time.
    private func viaVoxClient(socketPath: String, clients: Int) async throws -> (rps: Double, samples: LatencySamples) {
        let client = VoxClient(configuration: VoxClientConfiguration(socketPath: socketPath))
        defer { client.close() }
        try await client.ping()
        let perClient = requests / clients
        let started = monotonicNanoseconds()
        let samples = try await withThrowingTaskGroup(of: LatencySamples.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    var samples = LatencySamples(capacity: perClient)
                    for _ in 0..<perClient {
                        let sent = monotonicNanoseconds()
                        try await client.ping()
                        samples.record(monotonicNanoseconds() - sent)
                    }
                    return samples
                }
            }
            var all = LatencySamples(capacity: requests)
            for try await part in group { all.merge(part) }
            return all
        }
        let seconds = Double(monotonicNanoseconds() - started) / 1e9
        return (Double(samples.nanoseconds.count) / seconds, samples)
    }
}
