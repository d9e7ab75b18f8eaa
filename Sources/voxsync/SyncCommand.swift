import ArgumentParser
import Foundation
import VoxClient
import VoxCore
import VoxWire

/// `voxsync sync status | dead-letters | retry`: the sync worker, over its socket
/// (`sync.sock` next to the client socket).
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Inspect the write-behind sync to PostgreSQL.",
        subcommands: [SyncStatusCommand.self, DeadLettersCommand.self, RetryCommand.self])

    /// Sends `request` to the sync worker and returns its answer, or exits with a message.
    static func ask(_ request: Envelope.OneOf_Message, connection: ConnectionOptions) async throws -> Envelope.OneOf_Message {
        let clientSocket = connection.socket ?? DefaultPaths.clientSocket()
        let path = (clientSocket as NSString).deletingLastPathComponent + "/sync.sock"
        let client = connection.makeClient(socketPath: path)
        defer { client.close() }
        do {
            return try await client.send(request)
        } catch {
            throw fail(error, socket: path)
        }
    }
}

struct SyncStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Queue, circuit breaker, pool and the last push and pull.")

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() async throws {
        guard case .syncStatusOk(let status) = try await SyncCommand.ask(.syncStatus(.init()), connection: connection) else {
            throw fail(VoxClientError(.protocolViolation, "the sync worker did not answer sync_status"), socket: "sync.sock")
        }
        print(json ? Self.json(status) : Self.text(status))
    }

    static func text(_ status: Voxsync_V1_SyncStatusResponse) -> String {
        func time(_ ms: Int64) -> String {
            ms == 0 ? "never" : ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
        }
        guard status.remoteConfigured else {
            return """
                remote      none (set postgres_url or VOXSYNC_POSTGRES_URL); profiles stay local
                queue       \(status.queueSize) waiting
                """
        }
        return """
            remote      \(status.remote)
            circuit     \(status.circuitState) (opened \(status.circuitOpenings) times)
            queue       \(status.queueSize) waiting, oldest \(String(format: "%.1f", status.oldestQueuedAgeSeconds)) s
            dead        \(status.deadLetters) dead letters\(status.deadLetters > 0 ? " (voxsync sync dead-letters)" : "")
            pool        \(status.poolSize) connections, load \(String(format: "%.2f", status.poolLoad))
            pushed      \(status.pushedTotal) profiles in \(status.batchesTotal) upserts; last \(time(status.lastPushUnixMs)), \(String(format: "%.1f", status.lastBatchSeconds * 1000)) ms
            pulled      \(status.pulledTotal) remote changes; last \(time(status.lastPullUnixMs))
            failures    \(status.failuresTotal)\(status.lastError.isEmpty ? "" : "; last: \(status.lastError)")
            """
    }

    static func json(_ status: Voxsync_V1_SyncStatusResponse) -> String {
        let object: [String: Any] = [
            "remote_configured": status.remoteConfigured, "remote": status.remote, "circuit_state": status.circuitState,
            "circuit_openings": status.circuitOpenings, "queue_size": status.queueSize,
            "oldest_queued_age_seconds": status.oldestQueuedAgeSeconds, "dead_letters": status.deadLetters,
            "pool_size": status.poolSize, "pool_load": status.poolLoad, "pushed_total": status.pushedTotal,
            "batches_total": status.batchesTotal, "failures_total": status.failuresTotal, "pulled_total": status.pulledTotal,
            "last_push_unix_ms": status.lastPushUnixMs, "last_pull_unix_ms": status.lastPullUnixMs,
            "last_error": status.lastError, "last_batch_seconds": status.lastBatchSeconds,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "Profiles PostgreSQL refused too often; re-drive them with 'voxsync sync retry'.")

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "How many to show (1-1000).")
    var limit: UInt32 = 100

    func validate() throws {
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be between 1 and 1000") }
    }

    func run() async throws {
        var request = Voxsync_V1_DeadLettersRequest()
        request.limit = limit
        guard case .deadLettersOk(let answer) = try await SyncCommand.ask(.deadLetters(request), connection: connection) else {
            throw fail(VoxClientError(.protocolViolation, "the sync worker did not answer dead_letters"), socket: "sync.sock")
        }
        print("\(answer.total) dead letters")
        for letter in answer.deadLetters {
            let when = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(letter.failedAtUnixMs) / 1000))
            print("\(letter.id)\t\(letter.speakerID)\tversion \(letter.version)\t\(letter.attempts) attempts\t\(when)\t\(letter.error)")
        }
    }
}

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Put a dead letter (or all with --all) back in the outbox.")

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The dead letter's id, as 'voxsync sync dead-letters' shows it.")
    var id: Int64?

    @Flag(help: "Retry every dead letter.")
    var all = false

    func validate() throws {
        switch (id, all) {
        case (nil, false): throw ValidationError("give a dead letter's id, or --all")
        case (.some, true): throw ValidationError("give an id or --all, not both")
        case (.some(let id), false) where id <= 0: throw ValidationError("a dead letter's id is a positive number")
        default: break
        }
    }

    func run() async throws {
        var request = Voxsync_V1_RetryDeadLettersRequest()
        request.id = id ?? 0
        guard case .retryDeadLettersOk(let answer) = try await SyncCommand.ask(.retryDeadLetters(request), connection: connection) else {
            throw fail(VoxClientError(.protocolViolation, "the sync worker did not answer retry_dead_letters"), socket: "sync.sock")
        }
        print("requeued \(answer.requeued)")
    }
}
