import ArgumentParser
import Foundation

/// Durable enrolls: `clients` connections each with one write in flight, every write a new
/// speaker, each acknowledged only after its SQLite transaction committed (WAL,
/// synchronous=FULL, group commit) — side by side with the durable reference: Redis with its
/// append-only file fsynced before every reply (`appendfsync always`), SET of a new 768-byte
/// key per request, driven by the same closed-loop client and by redis-benchmark itself.
struct EnrollBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Durable enrolls from concurrent clients: acknowledged writes per second, beside Redis with appendfsync always.")

    @Option(help: "Path of voxsyncd (default: next to voxsync-bench).")
    var voxsyncd: String?

    @Option(help: "Comma-separated client counts (1-1000 each).")
    var clients: String = "1,32"

    @Option(help: "Enroll into the voxsyncd already listening on this socket instead of a fresh one per round.")
    var socket: String?

    @Option(help: "Enrolls per round (1000-10000000; at most 20000 for 1 client).")
    var requests: Int = 100_000

    @Option(help: "Alternating rounds per client count, odd; each row shows its median round (1-9).")
    var rounds: Int = 3

    @Option(help: "redis-server to start for the durable reference rows (empty: no Redis rows).")
    var redisServer: String = "redis-server"

    func validate() throws {
        guard (1000...10_000_000).contains(requests) else {
            throw ValidationError("--requests must be between 1000 and 10000000; got \(requests)")
        }
        guard (1...9).contains(rounds), rounds % 2 == 1 else { throw ValidationError("--rounds must be odd (a median round) and between 1 and 9; got \(rounds)") }
        _ = try parseClientCounts(clients)
        if !redisServer.isEmpty, !isExecutableOnPath(redisServer) {
            throw ValidationError("--redis-server '\(redisServer)' is not an executable here; install redis-server (launch/bench does) or pass --redis-server '' to leave out the Redis rows")
        }
    }

    /// Whether `name` is an executable path, or a name `PATH` finds one for.
    private func isExecutableOnPath(_ name: String) -> Bool {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    func run() throws {
        let dimension = 192
        var vectors = BenchVectors(dimension: dimension, seed: 11)
        // Generated before the clock starts; rounds reuse them (each write is still a new speaker).
        let embeddings = (0..<4096).map { _ in vectors.unit() }
        let values = embeddings.map { embedding in embedding.withUnsafeBytes { [UInt8]($0) } }
        var measured = Rounds()
        var first = 0
        for count in try parseClientCounts(clients) {
            let roundRequests = count == 1 ? min(requests, 20_000) : requests
            for _ in 0..<rounds {
                // A fresh store and a fresh Redis per round, so every round starts empty.
                do {
                    let daemon = socket == nil ? try DaemonProcess(executable: voxsyncd ?? DaemonProcess.siblingExecutable) : nil
                    defer { daemon?.stop() }
                    let vox = try EnrollLoad.run(socketPath: socket ?? daemon!.socketPath, clients: count, first: first, count: roundRequests) {
                        embeddings[$0 % embeddings.count]
                    }
                    first += roundRequests
                    measured.add("voxsyncd enroll, WAL synchronous=FULL · closed-loop client", clients: count, samples: vox.samples, seconds: vox.seconds)
                }
                guard !redisServer.isEmpty else { continue }
                do {
                    let redis = try RedisServerProcess(executable: redisServer)
                    defer { redis.stop() }
                    // Built before the clock starts, as voxsync's frames are (`EnrollLoad`).
                    let run = try EnrollLoad.runPrepared(
                        socketPath: redis.socketPath, clients: count, count: roundRequests,
                        build: { indices in
                            indices.map { RedisFixedReplyDialect.setCommand(key: benchSpeakerID($0), value: values[$0 % values.count]) }
                        },
                        dialect: { RedisFixedReplyDialect.set($0) })
                    measured.add("redis-server SET 768 B, appendfsync always · the same closed-loop client", clients: count, samples: run.samples, seconds: run.seconds)
                }
                do {
                    let redis = try RedisServerProcess(executable: redisServer)
                    defer { redis.stop() }
                    let row = try RedisBenchmark(socketPath: redis.socketPath).run(
                        test: "set", clients: count, requests: roundRequests, valueSize: 4 * dimension, keyspace: 1_000_000_000)
                    measured.add("redis-server SET 768 B, appendfsync always · redis-benchmark -t set -r", clients: count, .init(
                        requestsPerSecond: row.requestsPerSecond, p50: row.p50Microseconds, p99: row.p99Microseconds))
                }
            }
        }
        print("Durable enrolls: each client one write in flight, every write a new speaker (192 dims, no extra samples),")
        print("acknowledged after its transaction (profile row + outbox row) committed; Redis acknowledges a SET of a new")
        print("key after its append-only file is fsynced; release build, a fresh store and a fresh Redis per round,")
        print("\(rounds) alternating rounds, median shown")
        print()
        print(measured.table().render())
    }
}
