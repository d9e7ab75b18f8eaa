import ArgumentParser
import Foundation
import VoxClient
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// SIGKILLs the cache worker of a real voxsyncd over and over under a steady trickle of pings
/// through VoxClient, and measures kill → ready and failed client requests.
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

    func validate() throws {
        guard (1...10_000).contains(kills) else { throw ValidationError("--kills must be between 1 and 10000; got \(kills)") }
        guard (1...1000).contains(pingIntervalMs) else { throw ValidationError("--ping-interval-ms must be between 1 and 1000") }
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
        for _ in 0..<kills {
            let victim = try await cachePID(control: control)
            let killedAt = monotonicNanoseconds()
            kill(victim, SIGKILL)
            try await waitForCache(control: control, notPID: victim)
            latencies.record(monotonicNanoseconds() - killedAt)
            try await Task.sleep(for: .milliseconds(100))  // let the trickle use the new worker
        }
        trickle.cancel()
        let (sent, failed) = await trickle.value

        var table = Table("kills", "kill→ready p50 ms", "kill→ready p99 ms", "max ms", "pings sent", "pings failed")
        table.add("\(kills)", format(latencies.percentileMicroseconds(50) / 1000, decimals: 1),
                  format(latencies.percentileMicroseconds(99) / 1000, decimals: 1),
                  format(latencies.percentileMicroseconds(100) / 1000, decimals: 1), "\(sent)", "\(failed.count)")
        print("Cache worker SIGKILLed \(kills) times, 100 ms apart, under a ping every \(pingIntervalMs) ms (VoxClient with retry, empty store;")
        print("settings stable_after_ms=100 and flap_threshold=10000 so that every kill meets a healthy worker)")
        print()
        print(table.render())
        print()
        print("Reference: systemd's default RestartSec alone is 100 ms before a restart even begins.")
        for failure in Set(failed).prefix(5) { print("  failure: \(failure)") }
        if !failed.isEmpty { throw ExitCode(1) }
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
