import ArgumentParser
import Foundation
import VoxClient
import VoxCore

struct PingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Check that the service answers, and how fast.")

    @OptionGroup var connection: ConnectionOptions

    @Option(name: .shortAndLong, help: "Number of pings (1-1000000).")
    var count: Int = 1

    func validate() throws {
        guard (1...1_000_000).contains(count) else {
            throw ValidationError("--count must be between 1 and 1000000; got \(count)")
        }
    }

    func run() async throws {
        let client = connection.makeClient()
        defer { client.close() }
        let socket = client.configuration.socketPath
        do {
            let hello = try await client.serverHello()
            var samples: [Duration] = []
            samples.reserveCapacity(count)
            let clock = ContinuousClock()
            for _ in 0..<count {
                let started = clock.now
                try await client.ping()
                samples.append(clock.now - started)
            }
            samples.sort()
            let micros = { (d: Duration) in Int((d.seconds * 1e6).rounded()) }
            let p50 = samples[samples.count / 2]
            let p99 = samples[min(samples.count - 1, samples.count * 99 / 100)]
            print("pong from \(hello.serverName) (protocol v\(hello.protocolVersion), instance \(hello.instanceID)) at \(socket)")
            print("\(count) ping(s): p50 \(micros(p50)) µs, p99 \(micros(p99)) µs, max \(micros(samples.last!)) µs")
        } catch {
            throw fail(error, socket: socket)
        }
    }
}
