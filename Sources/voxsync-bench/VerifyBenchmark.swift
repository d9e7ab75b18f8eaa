import ArgumentParser
import Foundation
import VoxWire

/// Verify round trips over the Unix socket against a real voxsyncd, side by side with Redis
/// GET of a value of the same size (768 bytes: one 192-float embedding) on a Unix socket —
/// driven by the same closed-loop client, and by redis-benchmark itself.
struct VerifyBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify round trip: voxsyncd vs redis-server GET -d 768, both on Unix sockets, same client counts.")

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

    @Option(help: "Enrolled speakers the verifies are spread over (1-1000000).")
    var speakers: Int = 1000

    @Flag(help: "Measure the cost of metrics instead: voxsyncd with metrics on and with metrics_enabled=false, rounds alternating.")
    var compareMetrics = false

    @Option(name: .customLong("set"), help: "A voxsyncd setting key=value for the measured service (repeatable), e.g. prefetch_enabled=false.")
    var settings: [String] = []

    @Flag(help: "Also measure verify with identify requests running back to back on another connection (with --speakers 100000, each scans a full matrix).")
    var identifyBeside = false

    @Option(name: .customLong("compare"), help: "Also measure another voxsyncd that differs by this key=value setting, in the same alternating rounds (repeatable), e.g. client_io=nio or client_busy_poll_us=0.")
    var comparisons: [String] = []

    func validate() throws {
        guard (1000...10_000_000).contains(requests) else {
            throw ValidationError("--requests must be between 1000 and 10000000; got \(requests)")
        }
        guard (1...9).contains(rounds), rounds % 2 == 1 else { throw ValidationError("--rounds must be odd (a median round) and between 1 and 9; got \(rounds)") }
        guard (1...1_000_000).contains(speakers) else { throw ValidationError("--speakers must be between 1 and 1000000; got \(speakers)") }
        _ = try parseClientCounts(clients)
        for setting in comparisons + settings where !setting.contains("=") {
            throw ValidationError("--compare and --set take key=value (e.g. client_io=nio); got '\(setting)'")
        }
    }

    func run() throws {
        if compareMetrics { return try runMetricsComparison() }
        let dimension = 192
        let daemon = try DaemonProcess(
            executable: voxsyncd ?? DaemonProcess.siblingExecutable, arguments: settings.flatMap { ["--set", $0] })
        defer { daemon.stop() }
        let probes = try enrollAndMakeProbes(daemon, dimension: dimension)
        // The same service with one setting changed (the client socket on SwiftNIO channels,
        // no busy polling), for the difference it makes; every daemon holds the same speakers
        // and answers the same probes (the others serve no Prometheus endpoint: the first has
        // the port).
        var variants: [(setting: String, daemon: DaemonProcess)] = []
        defer { for variant in variants { variant.daemon.stop() } }
        for setting in comparisons {
            let variant = try DaemonProcess(
                executable: voxsyncd ?? DaemonProcess.siblingExecutable,
                arguments: (settings + [setting, "metrics_address="]).flatMap { ["--set", $0] })
            variants.append((setting, variant))
            _ = try enrollAndMakeProbes(variant, dimension: dimension)
        }
        let redisKey = "key:__rand_int__"  // the key redis-benchmark's GET reads when run without -r
        if let redisSocket {
            let value = [UInt8](repeating: UInt8(ascii: "x"), count: 4 * dimension)
            _ = try ClosedLoopClient.run(socketPath: redisSocket, clients: 1, requests: 1) { RedisFixedReplyDialect.set(key: redisKey, value: value) }
        }

        var measured = Rounds()
        for count in try parseClientCounts(clients) {
            // Warm up both sides (page faults, allocator, branch predictors) before measuring,
            // decoding every answer of the warm-up: each must accept its speaker, from the cache.
            for warming in [daemon] + variants.map(\.daemon) {
                _ = try ClosedLoopClient.run(
                    socketPath: warming.socketPath, clients: count, requests: min(requests, 10_000),
                    dialect: verifyDialects(probes, validate: Self.acceptedFromCache))
            }
            for _ in 0..<rounds {
                let vox = try ClosedLoopClient.run(socketPath: daemon.socketPath, clients: count, requests: requests, dialect: verifyDialects(probes))
                measured.add("voxsyncd verify · closed-loop client", clients: count, samples: vox.samples, seconds: vox.seconds)
                for (setting, variant) in variants {
                    let run = try ClosedLoopClient.run(socketPath: variant.socketPath, clients: count, requests: requests, dialect: verifyDialects(probes))
                    measured.add("voxsyncd verify, \(setting) · closed-loop client", clients: count, samples: run.samples, seconds: run.seconds)
                }
                if identifyBeside {
                    let beside = try IdentifyLoad(socketPath: daemon.socketPath, dimension: dimension)
                    let mixed: (samples: LatencySamples, seconds: Double)
                    do {
                        mixed = try ClosedLoopClient.run(socketPath: daemon.socketPath, clients: count, requests: requests, dialect: verifyDialects(probes))
                    } catch {
                        _ = try? beside.stop()
                        throw error
                    }
                    let identifies = try beside.stop()
                    measured.add("voxsyncd verify, identify running beside · closed-loop client", clients: count, samples: mixed.samples, seconds: mixed.seconds)
                    measured.add("voxsyncd identify of k = 10 on one more connection, beside the verifies above", clients: count, .init(
                        requestsPerSecond: Double(identifies.samples.nanoseconds.count) / identifies.seconds,
                        p50: identifies.samples.percentileMicroseconds(50), p99: identifies.samples.percentileMicroseconds(99)))
                }
                guard let redisSocket else { continue }
                let redis = try ClosedLoopClient.run(socketPath: redisSocket, clients: count, requests: requests) {
                    RedisGetDialect(key: redisKey, valueSize: 4 * dimension)
                }
                measured.add("redis-server GET 768 B · the same closed-loop client", clients: count, samples: redis.samples, seconds: redis.seconds)
                let row = try RedisBenchmark(socketPath: redisSocket).run(test: "get", clients: count, requests: requests)
                measured.add("redis-server GET 768 B · redis-benchmark -t get", clients: count, .init(
                    requestsPerSecond: row.requestsPerSecond, p50: row.p50Microseconds, p99: row.p99Microseconds))
            }
        }
        print("Verify round trip over a Unix socket (\(requests) requests per round, \(speakers) speakers × \(dimension) dims, release build;")
        if redisSocket != nil { print("Redis serves GET of a \(4 * dimension)-byte value, the size of one embedding;") }
        if identifyBeside { print("beside: identify requests (k = 10) sent back to back on one more connection during the round;") }
        print("\(rounds) alternating rounds, median shown)")
        print()
        print(measured.table().render())
    }
}

extension VerifyBenchmark {
    /// Enrolls the speakers and returns verify frames: a fresh utterance of each speaker, cycled
    /// through by every connection.
    func enrollAndMakeProbes(_ daemon: DaemonProcess, dimension: Int) throws -> [[UInt8]] {
        var vectors = BenchVectors(dimension: dimension, seed: 7)
        let embeddings = (0..<speakers).map { _ in vectors.unit() }
        _ = try EnrollLoad.run(socketPath: daemon.socketPath, clients: min(32, speakers), count: speakers) { embeddings[$0] }
        return try VoxsyncFrameRingDialect.frames((0..<min(speakers, 1024)).map {
            verifyMessage(benchSpeakerID($0), vectors.around(embeddings[$0], spread: 0.03))
        })
    }

    /// A maker of verify dialects over `probes`, each connection starting elsewhere in the ring
    /// so that connections do not move in step.
    func verifyDialects(_ probes: [[UInt8]], validate: ((Envelope) throws -> Void)? = nil) -> () throws -> VoxsyncFrameRingDialect {
        var connection = 0
        return {
            defer { connection += 1 }
            return try VoxsyncFrameRingDialect(
                frames: probes, start: connection * 7919, answer: .verifyOk(.init()), validate: validate)
        }
    }

    /// The warm-up's check of every answer: a verify that accepted its speaker, from the cache
    /// (the probes are fresh utterances of enrolled speakers, all of which fit in the cache).
    static func acceptedFromCache(_ answer: Envelope) throws {
        guard case .verifyOk(let verdict)? = answer.message else {
            throw BenchError("expected a verify answer, got \(answer.message?.name ?? "nothing")")
        }
        guard verdict.accepted, verdict.source == .cache else {
            throw BenchError("verify answered accepted=\(verdict.accepted) (score \(verdict.score)) from \(verdict.source); expected an accepted answer from the cache")
        }
    }

    /// The verify load with metrics on and off, five alternating rounds each (the best of
    /// each is kept: on a shared two-core machine the noise is all on the slow side).
    func runMetricsComparison() throws {
        let counts = try parseClientCounts(clients)
        var best: [String: (rps: Double, p50: Double, p99: Double)] = [:]
        for round in 0..<5 {
            for enabled in round % 2 == 0 ? [true, false] : [false, true] {
                let daemon = try DaemonProcess(
                    executable: voxsyncd ?? DaemonProcess.siblingExecutable,
                    arguments: ["--set", "metrics_enabled=\(enabled)", "--set", "metrics_address="])
                defer { daemon.stop() }
                let probes = try enrollAndMakeProbes(daemon, dimension: 192)
                for count in counts {
                    _ = try ClosedLoopClient.run(
                        socketPath: daemon.socketPath, clients: count, requests: min(requests, 10_000), dialect: verifyDialects(probes))
                    let run = try ClosedLoopClient.run(socketPath: daemon.socketPath, clients: count, requests: requests, dialect: verifyDialects(probes))
                    let rps = Double(run.samples.nanoseconds.count) / run.seconds
                    let key = "\(enabled) \(count)"
                    if rps > best[key]?.rps ?? 0 {
                        best[key] = (rps, run.samples.percentileMicroseconds(50), run.samples.percentileMicroseconds(99))
                    }
                }
            }
        }
        var table = Table("voxsyncd verify", "clients", "requests/s", "p50 µs", "p99 µs", "cost of metrics")
        for count in counts {
            let on = best["true \(count)"]!, off = best["false \(count)"]!
            table.add("metrics off", "\(count)", format(off.rps), format(off.p50), format(off.p99), "")
            table.add("metrics on", "\(count)", format(on.rps), format(on.p50), format(on.p99),
                      format((1 - on.rps / off.rps) * 100, decimals: 1) + " %")
        }
        print("Cost of metrics on the verify round trip (\(requests) requests per row, best of 5 alternating rounds, release build)")
        print()
        print(table.render())
    }
}

/// Client counts from a comma-separated option.
func parseClientCounts(_ text: String) throws -> [Int] {
    let counts = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !counts.isEmpty, counts.allSatisfy({ (1...1000).contains($0) }) else {
        throw ValidationError("--clients must be numbers from 1 to 1000 separated by commas; got '\(text)'")
    }
    return counts
}

/// Identify requests sent back to back on one connection, on a thread of its own, until
/// `stop`: the load a verify benchmark runs beside its verifies.
final class IdentifyLoad: @unchecked Sendable {
    private let done = Locked(false)
    private let finished = DispatchSemaphore(value: 0)
    private var result: Result<(samples: LatencySamples, seconds: Double), Error>?

    init(socketPath: String, dimension: Int) throws {
        var vectors = BenchVectors(dimension: dimension, seed: 23)
        let probes = (0..<64).map { _ in vectors.unit() }
        let thread = Thread { [done, finished] in
            var samples = LatencySamples(capacity: 4096)
            var seconds = 0.0
            var next = 0
            do {
                while !done.current {
                    // 20 at a time: `done` is looked at between runs.
                    let run = try ClosedLoopClient.run(socketPath: socketPath, clients: 1, requests: 20) {
                        VoxsyncDialect {
                            defer { next += 1 }
                            var identify = Voxsync_V1_IdentifyRequest()
                            identify.probe.values = probes[next % probes.count]
                            identify.k = 10
                            return .identify(identify)
                        }
                    }
                    samples.merge(run.samples)
                    seconds += run.seconds
                }
                self.result = .success((samples, seconds))
            } catch {
                self.result = .failure(error)
            }
            finished.signal()
        }
        thread.start()
    }

    /// Stops the load and returns its identifies' latencies and the time they took.
    func stop() throws -> (samples: LatencySamples, seconds: Double) {
        done.withLock { $0 = true }
        finished.wait()
        return try result!.get()
    }
}
