import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import VoxCore
import VoxStore
import VoxSync

/// `voxsync-bench sync`: N queued profiles drained from a local store to PostgreSQL by the
/// sync engine (the sync worker's code, without the process around it), at several batch sizes,
/// side by side with `psql \copy` of the same rows into the same (empty) table.
struct SyncBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Outbox drain to PostgreSQL vs psql \\copy of the same rows.")

    @Option(help: "A PostgreSQL URL whose user may create databases (each run gets a new one).")
    var postgresURL: String

    @Option(help: "Profiles queued in the outbox.")
    var profiles = 100_000

    @Option(help: "Embedding dimension.")
    var dimension = 192

    @Option(help: "Comma-separated batch sizes to measure.")
    var batchSizes = "50,1000"

    func validate() throws {
        guard (1...10_000_000).contains(profiles) else { throw ValidationError("--profiles must be 1-10000000") }
        guard (1...8192).contains(dimension) else { throw ValidationError("--dimension must be 1-8192") }
        guard !parsedBatchSizes.isEmpty, parsedBatchSizes.allSatisfy({ (1...10_000).contains($0) }) else {
            throw ValidationError("--batch-sizes must be comma-separated numbers 1-10000")
        }
        do { _ = try PostgresURL(parsing: postgresURL) } catch { throw ValidationError("\(error)") }
    }

    var parsedBatchSizes: [Int] { batchSizes.split(separator: ",").compactMap { Int($0) } }

    func run() async throws {
        var logger = Logger(label: "voxsync-bench.sync")
        logger.logLevel = .warning
        let admin = try PostgresURL(parsing: postgresURL)
        let directory = NSTemporaryDirectory() + "voxsync-bench-sync-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let template = directory + "/template.sqlite"
        let started = ContinuousClock.now
        let rows = try makeStore(at: template)
        FileHandle.standardError.write(Data("queued \(profiles) profiles in \(format(started.duration(to: .now).seconds, decimals: 1)) s\n".utf8))

        var table = Table("method", "batch", "profiles", "seconds", "profiles/s", "remote rows")
        for batchSize in parsedBatchSizes {
            let path = directory + "/run-\(batchSize).sqlite"
            try FileManager.default.copyItem(atPath: template, toPath: path)
            let url = try await freshDatabase(admin, logger: logger)
            var settings = SyncSettings()
            settings.batchSize = batchSize
            settings.remoteTimeout = .seconds(120)
            let remote = RemoteStore(url: url, poolSize: 3, logger: logger)
            let engine = SyncEngine(
                store: try SyncStore(configuration: configuration(path)), remote: remote, settings: settings, logger: logger
            ) { _ in }
            let (seconds, report) = try await remote.whileRunning {
                try await remote.migrate(timeout: .seconds(60))
                let clock = ContinuousClock.now
                let report = await engine.drain()
                return (clock.duration(to: .now).seconds, report)
            }
            await engine.shutdown()
            guard !report.interrupted else { throw ValidationError("the drain was interrupted; see the log above") }
            FileHandle.standardError.write(Data("batch \(batchSize): \(report.pushed) profiles in \(format(seconds, decimals: 2)) s, \(report.upserts) upserts\n".utf8))
            let count = try await countRows(url, logger: logger)
            table.add("voxsync sync engine (UNNEST upsert)", String(batchSize), String(report.pushed), format(seconds, decimals: 2),
                      format(Double(report.pushed) / seconds), String(count))
        }

        let csv = directory + "/profiles.csv"
        try writeCSV(rows, to: csv)
        let url = try await freshDatabase(admin, logger: logger)
        let remote = RemoteStore(url: url, poolSize: 1, logger: logger)
        try await remote.whileRunning { try await remote.migrate(timeout: .seconds(60)) }
        let copyStarted = ContinuousClock.now
        try psql(url, command: "\\copy voxsync_profiles (speaker_id, embedding, samples, threshold, metadata, version, origin, updated_at, deleted, dimension) FROM '\(csv)' WITH (FORMAT csv)")
        let copySeconds = copyStarted.duration(to: .now).seconds
        let copied = try await countRows(url, logger: logger)
        table.add("psql \\copy (same rows, same table)", "-", String(rows.count), format(copySeconds, decimals: 2),
                  format(Double(rows.count) / copySeconds), String(copied))

        print("## Sync: \(profiles) queued profiles (\(dimension) dims) drained to a local PostgreSQL")
        print()
        print(table.render())
        print()
        print("The engine's time covers reading the outbox from SQLite, coalescing, the upserts (last-writer-wins rule in the")
        print("statement, change-feed trigger) and completing the outbox rows; \\copy only loads a prepared file.")
    }

    private func configuration(_ path: String) -> StoreConfiguration {
        var configuration = StoreConfiguration(path: path, dimension: dimension, origin: "bench-instance")
        configuration.synchronousFull = false
        return configuration
    }

    /// A store with `profiles` profiles, each with its outbox row, written as the cache does.
    private func makeStore(at path: String) throws -> [ProfileRecord] {
        let store = try ProfileStore(configuration: configuration(path))
        var rows: [ProfileRecord] = []
        rows.reserveCapacity(profiles)
        var generator = SystemRandomNumberGenerator()
        let now = WallClock.nowMilliseconds()
        for start in stride(from: 0, to: profiles, by: 1000) {
            let batch = (start..<min(start + 1000, profiles)).map { index in
                (profile: ProfileRecord(
                    speakerID: "speaker-\(index)",
                    embedding: (0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) },
                    threshold: 0.3, metadata: ""), expectedVersion: UInt64?.none)
            }
            for result in try store.putBatch(batch, now: now) { rows.append(try result.get()) }
        }
        return rows
    }

    private func writeCSV(_ rows: [ProfileRecord], to path: String) throws {
        var text = ""
        text.reserveCapacity(rows.count * (dimension * 8 + 100))
        for row in rows {
            let embedding = RemoteStore.buffer(row.embedding).readableBytesView.map { String(format: "%02x", $0) }.joined()
            text += "\(row.speakerID),\\x\(embedding),\\x,\(row.threshold),\"\",\(Int64(bitPattern: row.version)),\(row.origin),\(row.updatedAt),false,\(dimension)\n"
        }
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    private func psql(_ url: PostgresURL, command: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-q", url.unredactedString, "-c", command]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("psql exited with \(process.terminationStatus)") }
    }

    private func freshDatabase(_ admin: PostgresURL, logger: Logger) async throws -> PostgresURL {
        try await PostgresAdmin.createDatabase(on: admin, prefix: "voxsync_bench_", logger: logger)
    }

    private func countRows(_ url: PostgresURL, logger: Logger) async throws -> Int {
        try await PostgresAdmin.withClient(url, logger: logger) { client in
            for try await count in try await client.query("SELECT count(*) FROM voxsync_profiles", logger: logger).decode(Int.self) {
                return count
            }
            return 0
        }
    }
}
