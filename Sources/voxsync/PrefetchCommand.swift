import ArgumentParser
import Foundation
import VoxClient
import VoxCore
import VoxWire

/// `voxsync prefetch predictions`: the prefetch worker, over its socket (`prefetch.sock` next
/// to the client socket).
struct PrefetchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prefetch",
        abstract: "Inspect the prefetcher: who it expects to be read soon, and how well it guesses.",
        subcommands: [PredictionsCommand.self])
}

struct PredictionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predictions",
        abstract: "The speakers the prefetcher expects within the window, with confidence and reason.",
        discussion: """
            Every prediction is listed, also those below the threshold (only those at or above it \
            are prefetched). Reasons: frequency (many reads lately), interval (reads at a regular \
            interval), routine (reads at similar times on earlier days).
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Look-ahead in seconds (1-86400; default: the service's prefetch_window_ms).")
    var window: Int?

    @Option(help: "Most predictions to show (1-10000).")
    var limit = 20

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        if let window, !(1...86_400).contains(window) {
            throw ValidationError("--window must be between 1 and 86400 seconds; got \(window)")
        }
        guard (1...10_000).contains(limit) else {
            throw ValidationError("--limit must be between 1 and 10000; got \(limit)")
        }
    }

    func run() async throws {
        var request = Voxsync_V1_PrefetchPredictionsRequest()
        request.windowSeconds = UInt32(window ?? 0)
        request.limit = UInt32(limit)
        let clientSocket = connection.socket ?? DefaultPaths.clientSocket()
        let path = (clientSocket as NSString).deletingLastPathComponent + "/prefetch.sock"
        let client = connection.makeClient(socketPath: path)
        defer { client.close() }
        let answer: Envelope.OneOf_Message
        do {
            answer = try await client.send(.prefetchPredictions(request))
        } catch {
            throw fail(error, socket: path)
        }
        guard case .prefetchPredictionsOk(let report) = answer else {
            throw fail(VoxClientError(.protocolViolation, "the prefetch worker did not answer prefetch_predictions"), socket: path)
        }
        let now = WallClock.nowMilliseconds()
        print(json ? Self.json(report, now: now) : Self.text(report, now: now))
    }

    static func text(_ report: Voxsync_V1_PrefetchPredictionsResponse, now: Int64) -> String {
        let precision = report.precision < 0
            ? "not measured yet"
            : String(format: "%.2f", report.precision) + " (\(report.usedTotal) read, \(report.wastedTotal) evicted unread)"
        var lines = [
            "threshold   \(String(format: "%.2f", report.threshold))",
            "precision   \(precision)",
            "learned     \(report.speakers) speakers, \(report.activePatterns) with a pattern; \(report.historyEvents) events held, \(report.totalAccesses) accesses",
            "sent        \(report.sentTotal) speakers to the cache",
            "",
        ]
        guard !report.predictions.isEmpty else {
            lines.append("no predictions within the window")
            return lines.joined(separator: "\n")
        }
        let width = max(7, report.predictions.map { $0.speakerID.count }.max() ?? 0)
        func pad(_ text: String, _ count: Int) -> String { text.padding(toLength: max(count, text.count), withPad: " ", startingAt: 0) }
        lines.append("\(pad("SPEAKER", width))  CONFIDENCE  EXPECTED IN  REASON")
        for prediction in report.predictions {
            let seconds = Double(prediction.expectedAtUnixMs - now) / 1000
            lines.append("\(pad(prediction.speakerID, width))  \(pad(String(format: "%.2f", prediction.confidence), 10))  \(pad(String(format: "%.1f s", seconds), 11))  \(prediction.reason)")
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ report: Voxsync_V1_PrefetchPredictionsResponse, now: Int64) -> String {
        let object: [String: Any] = [
            "threshold": report.threshold, "precision": report.precision, "total_accesses": report.totalAccesses,
            "speakers": report.speakers, "active_patterns": report.activePatterns, "history_events": report.historyEvents,
            "sent_total": report.sentTotal, "used_total": report.usedTotal, "wasted_total": report.wastedTotal,
            "last_run_unix_ms": report.lastRunUnixMs,
            "predictions": report.predictions.map { prediction -> [String: Any] in
                [
                    "speaker_id": prediction.speakerID, "confidence": prediction.confidence,
                    "expected_at_unix_ms": prediction.expectedAtUnixMs,
                    "expected_in_seconds": Double(prediction.expectedAtUnixMs - now) / 1000, "reason": prediction.reason,
                ]
            },
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
