import ArgumentParser
import Foundation
import VoxStore

/// The local store alone, without sockets: what one group commit of `batch` new speakers
/// costs on the committing thread, with `synchronous=FULL` (an fsync per commit) and with
/// `synchronous=NORMAL` (none in WAL mode), so the table separates SQLite's own work from the
/// disk's. The enroll benchmark's cycle is this plus the round trips of the writes.
struct StoreBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Group commits in the local SQLite store alone: time per batch and per write.")

    @Option(help: "Writes per group commit (1-1024).")
    var batch: Int = 32

    @Option(help: "Writes per row (1000-10000000).")
    var writes: Int = 100_000

    @Option(help: "Directory for the throwaway store files (default: a new one under /tmp).")
    var directory: String?

    func validate() throws {
        guard (1...1024).contains(batch) else { throw ValidationError("--batch must be between 1 and 1024; got \(batch)") }
        guard (1000...10_000_000).contains(writes) else { throw ValidationError("--writes must be between 1000 and 10000000; got \(writes)") }
    }

    func run() throws {
        let dimension = 192
        var vectors = BenchVectors(dimension: dimension, seed: 11)
        let embeddings = (0..<4096).map { _ in vectors.unit() }
        let root = directory ?? NSTemporaryDirectory() + "voxsync-store-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { if directory == nil { try? FileManager.default.removeItem(atPath: root) } }

        var table = Table("synchronous", "batch", "writes", "writes/s", "batch p50 µs", "batch p99 µs", "µs per write")
        for full in [true, false] {
            let path = root + "/store-\(full ? "full" : "normal").sqlite"
            var configuration = StoreConfiguration(path: path, dimension: dimension, origin: "bench")
            configuration.synchronousFull = full
            let store = try ProfileStore(configuration: configuration)
            var samples = LatencySamples(capacity: writes / batch + 1)
            let start = DispatchTime.now().uptimeNanoseconds
            var next = 0
            while next < writes {
                let count = min(batch, writes - next)
                let group = (next..<next + count).map { index in
                    (profile: ProfileRecord(speakerID: benchSpeakerID(index), embedding: embeddings[index % embeddings.count]), expectedVersion: UInt64?.none)
                }
                let began = DispatchTime.now().uptimeNanoseconds
                let results = try store.putBatch(group, now: Int64(Date().timeIntervalSince1970 * 1000))
                samples.record(DispatchTime.now().uptimeNanoseconds - began)
                guard results.allSatisfy({ if case .success = $0 { true } else { false } }) else {
                    throw BenchError("a write in the batch at \(next) was refused: \(results)")
                }
                next += count
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            table.add(full ? "FULL (fsync)" : "NORMAL", "\(batch)", "\(writes)", format(Double(writes) / seconds),
                      format(samples.percentileMicroseconds(50)), format(samples.percentileMicroseconds(99)),
                      format(seconds * 1e6 / Double(writes), decimals: 1))
        }
        print("Group commits in the local store alone (no sockets): each batch one transaction of new speakers,")
        print("profile row + outbox row each, as the cache worker commits them; release build, fresh store per row")
        print()
        print(table.render())
    }
}
