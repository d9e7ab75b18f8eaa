import ArgumentParser
import Foundation

/// Durable enrolls: `clients` connections each with one write in flight, every write a new
/// speaker, each acknowledged only after its SQLite transaction committed (WAL,
/// synchronous=FULL, group commit).
struct EnrollBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Durable enrolls from concurrent clients: acknowledged writes per second.")

    @Option(help: "Path of voxsyncd (default: next to voxsync-bench).")
    var voxsyncd: String?

    @Option(help: "Comma-separated client counts (1-1000 each).")
    var clients: String = "1,32"

    @Option(help: "Enroll into the voxsyncd already listening on this socket instead of a fresh one per row.")
    var socket: String?

    @Option(help: "Enrolls per row (1000-10000000).")
    var requests: Int = 100_000

    func validate() throws {
        guard (1000...10_000_000).contains(requests) else {
            throw ValidationError("--requests must be between 1000 and 10000000; got \(requests)")
        }
        _ = try parseClientCounts(clients)
    }

    func run() throws {
        let dimension = 192
        var vectors = BenchVectors(dimension: dimension, seed: 11)
        // Generated before the clock starts; rows reuse them (each write is still a new speaker).
        let embeddings = (0..<4096).map { _ in vectors.unit() }
        var table = Table("clients", "enrolls", "acknowledged/s", "p50 µs", "p99 µs", "fsync-durable")
        for count in try parseClientCounts(clients) {
            // A fresh store per row, so every row starts from the same (empty) state.
            let daemon = socket == nil ? try DaemonProcess(executable: voxsyncd ?? DaemonProcess.siblingExecutable) : nil
            defer { daemon?.stop() }
            let rowRequests = count == 1 ? min(requests, 20_000) : requests
            let socketPath = socket ?? daemon!.socketPath
            let result = try EnrollLoad.run(socketPath: socketPath, clients: count, count: rowRequests) { embeddings[$0 % embeddings.count] }
            table.add("\(count)", "\(result.samples.nanoseconds.count)", format(Double(result.samples.nanoseconds.count) / result.seconds),
                      format(result.samples.percentileMicroseconds(50)), format(result.samples.percentileMicroseconds(99)), "yes (WAL, synchronous=FULL)")
        }
        print("Durable enrolls: each client one write in flight, every write a new speaker (192 dims, no extra samples),")
        print("acknowledged after its transaction (profile row + outbox row) committed; release build, fresh store per row")
        print()
        print(table.render())
    }
}
