import ArgumentParser
import Foundation
import VoxClient
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// SIGKILLs the cache worker of a real voxsyncd over and over under a steady trickle of pings
/// through VoxClient, and measures kill → ready, kill → first answered verify, and failed
/// client requests; with `--profiles` the store holds that many speakers first, and the
/// cache worker's memory is read before and after the kills.
struct RestartBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart",
        abstract: "Kill the cache worker repeatedly under load; report kill→ready and failed requests.")

    @Option(help: "Path of voxsyncd (default: next to voxsync-bench).")
    var voxsyncd: String?

    @Option(help: "Number of kills (1-10000).")
    var kills = 50

    @Option(help: "Pause between pings of the trickle, in milliseconds (1-1000).")
    var pingIntervalMs = 2

    @Option(help: "Speakers enrolled before the kills (0-1000000; 192 dims, no extra samples).")
    var profiles = 0

    func validate() throws {
        guard (1...10_000).contains(kills) else { throw ValidationError("--kills must be between 1 and 10000; got \(kills)") }
        guard (1...1000).contains(pingIntervalMs) else { throw ValidationError("--ping-interval-ms must be between 1 and 1000") }
        guard (0...1_000_000).contains(profiles) else { throw ValidationError("--profiles must be between 0 and 1000000") }
    }

    func run() async throws {
        // Every kill here should be measured as the kill of a healthy worker, so the backoff
        // starts over after 100 ms of uptime instead of 10 s, and flapping (which would
        // rightly slow restarts to the cap after 5 kills a minute) is out of the way.
        let daemon = try DaemonProcess(
            executable: voxsyncd ?? DaemonProcess.siblingExecutable,
            arguments: ["--set", "stable_after_ms=100", "--set", "flap_threshold=10000"])
        defer { daemon.stop() }
        let control = VoxClient(configuration: VoxClientConfiguration(socketPath: daemon.dataDirectory + "/run/control.sock"))
        defer { control.close() }
        try await waitForCache(control: control, notPID: 0)

        let dimension = 192
        var vectors = BenchVectors(dimension: dimension, seed: 13)
        var probes: [Envelope.OneOf_Message] = []
        var identifies: [Envelope.OneOf_Message] = []
        var memory = Table("cache worker", "profiles", "VmRSS MiB", "raw embedding MiB", "budget 1.5 × raw + 50 MiB", "within budget")
        let rawMiB = Double(profiles * dimension * 4) / 1_048_576
        func readMemory(_ moment: String) async throws {
            let rss = try residentMiB(pid: try await cachePID(control: control))
            memory.add(moment, "\(profiles)", format(rss, decimals: 1), format(rawMiB, decimals: 1),
                       format(1.5 * rawMiB + 50, decimals: 1), rss <= 1.5 * rawMiB + 50 ? "yes" : "no")
        }
        if profiles > 0 {
            let embeddings = (0..<profiles).map { _ in vectors.unit() }
            let enrolled = try EnrollLoad.run(socketPath: daemon.socketPath, clients: 32, count: profiles) { embeddings[$0] }
            print("enrolled \(profiles) speakers in \(format(enrolled.seconds, decimals: 1)) s", to: &standardError)
            for i in 0..<1000 {
                let speaker = (i * 7_919) % profiles
                let probe = vectors.around(embeddings[speaker], spread: 0.03)
                probes.append(verifyMessage(benchSpeakerID(speaker), probe))
                var identify = Voxsync_V1_IdentifyRequest()
                identify.probe.values = probe
                identify.k = 10
                identifies.append(.identify(identify))
            }
            try await readMemory("after enrolling (all written through it)")
        }
        let verifier = VoxClient(configuration: VoxClientConfiguration(socketPath: daemon.socketPath))
        defer { verifier.close() }

        let pinger = VoxClient(configuration: VoxClientConfiguration(socketPath: daemon.socketPath))
        defer { pinger.close() }
        let trickle = Task { () -> (sent: Int, failed: [String]) in
            var sent = 0
            var failed: [String] = []
            while !Task.isCancelled {
                do {
                    try await pinger.ping()
                } catch {
                    failed.append("\(error)")
                }
                sent += 1
                try? await Task.sleep(for: .milliseconds(pingIntervalMs))
            }
            return (sent, failed)
        }

        var latencies = LatencySamples(capacity: kills)
        var verifyLatencies = LatencySamples(capacity: kills)
        var identifyLatencies = LatencySamples(capacity: kills)
        for round in 0..<kills {
            let victim = try await cachePID(control: control)
            let probe = probes.isEmpty ? nil : probes[round % probes.count]
            let killedAt = monotonicNanoseconds()
            kill(victim, SIGKILL)
            // The first verify after the kill, as a client would send it: it waits in the
            // socket's backlog (held by the supervisor) until the new worker serves it.
            let verified = Task { () -> UInt64 in
                guard let probe else { return 0 }
                guard case .verifyOk = try await verifier.send(probe) else { throw BenchError("verify after the kill failed") }
                return monotonicNanoseconds() - killedAt
            }
            try await waitForCache(control: control, notPID: victim)
            latencies.record(monotonicNanoseconds() - killedAt)
            if probe != nil { verifyLatencies.record(try await verified.value) }
            // Identify needs every embedding: it is answered once the background preload is in.
            // Waiting for it also means each kill meets a fully preloaded worker.
            if !identifies.isEmpty {
                guard case .identifyOk = try await verifier.send(identifies[round % identifies.count]) else {
                    throw BenchError("identify after the kill failed")
                }
                identifyLatencies.record(monotonicNanoseconds() - killedAt)
            }
            try await Task.sleep(for: .milliseconds(100))  // let the trickle use the new worker
        }
        if profiles > 0 { try await readMemory("after the last restart (preloaded)") }
        trickle.cancel()
        let (sent, failed) = await trickle.value

        func milliseconds(_ samples: LatencySamples, _ p: Double) -> String {
            samples.nanoseconds.isEmpty ? "-" : format(samples.percentileMicroseconds(p) / 1000, decimals: 1)
        }
        var table = Table("profiles", "kills", "kill→ready p50 ms", "p99 ms", "max ms",
                          "kill→first verify p50 ms", "p99 ms", "max ms", "kill→identify (preloaded) p50 ms", "p99 ms",
                          "pings sent", "pings failed")
        table.add("\(profiles)", "\(kills)", milliseconds(latencies, 50), milliseconds(latencies, 99), milliseconds(latencies, 100),
                  milliseconds(verifyLatencies, 50), milliseconds(verifyLatencies, 99), milliseconds(verifyLatencies, 100),
                  milliseconds(identifyLatencies, 50), milliseconds(identifyLatencies, 99),
                  "\(sent)", "\(failed.count)")
        print("Cache worker SIGKILLed \(kills) times, 100 ms apart, under a ping every \(pingIntervalMs) ms (VoxClient with retry, \(profiles == 0 ? "empty store" : "\(profiles) profiles × \(dimension) dims"));")
        print("settings stable_after_ms=100 and flap_threshold=10000 so that every kill meets a healthy worker")
        print()
        print(table.render())
        if profiles > 0 {
            print()
            print("Cache worker memory (VmRSS from /proc/<pid>/status; raw embedding bytes = profiles × \(dimension) × 4)")
            print()
            print(memory.render())
        }
        print()
        print("Reference: systemd's default RestartSec alone is 100 ms before a restart even begins.")
        for failure in Set(failed).prefix(5) { print("  failure: \(failure)") }
        if !failed.isEmpty { throw ExitCode(1) }
    }

    /// VmRSS of `pid` in MiB.
    private func residentMiB(pid: Int32) throws -> Double {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else {
            throw BenchError("no VmRSS for pid \(pid)")
        }
        return kib / 1024
    }

    private func cachePID(control: VoxClient) async throws -> Int32 {
        guard case .statusOk(let status) = try await control.send(.status(.init())) else { throw BenchError("no status") }
        return status.workers.first { $0.role == .cache }?.pid ?? 0
    }

    /// Polls the supervisor until a cache worker other than `notPID` reports ready.
    private func waitForCache(control: VoxClient, notPID: Int32) async throws {
        let deadline = monotonicNanoseconds() + 30_000_000_000
        while monotonicNanoseconds() < deadline {
            if case .statusOk(let status) = try await control.send(.status(.init())),
               let cache = status.workers.first(where: { $0.role == .cache }),
               cache.state == "ready", cache.pid != notPID, cache.pid != 0 {
                return
            }
            try await Task.sleep(for: .microseconds(500))
        }
        throw BenchError("the cache worker did not come back within 30 s")
    }
}
