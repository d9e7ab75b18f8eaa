import ArgumentParser
import Foundation
import VoxClient
import VoxCore
import VoxTransport
import VoxWire

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the supervisor and each worker: pid, state, uptime, restarts, last exit.")

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The supervisor's control socket (default: control.sock next to the client socket).")
    var controlSocket: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        let clientSocket = connection.socket ?? DefaultPaths.clientSocket()
        let path = controlSocket ?? (clientSocket as NSString).deletingLastPathComponent + "/control.sock"
        let client = connection.makeClient(socketPath: path)
        defer { client.close() }
        let status: StatusResponse
        do {
            guard case .statusOk(let answer) = try await client.send(.status(.init())) else {
                throw VoxClientError(.protocolViolation, "the supervisor did not answer status")
            }
            status = answer
        } catch {
            throw fail(error, socket: path)
        }
        print(json ? Self.json(status) : Self.table(status))
    }

    static func table(_ status: StatusResponse) -> String {
        var lines = ["voxsyncd pid \(status.supervisorPid), up \(duration(status.supervisorUptimeSeconds)), data \(status.dataDirectory)"]
        let header = ["WORKER", "PID", "STATE", "UPTIME", "RESTARTS", "LAST EXIT"]
        let rows = status.workers.map { worker in
            [worker.role.serviceRole?.rawValue ?? "unknown", worker.pid == 0 ? "-" : String(worker.pid), worker.state,
             worker.uptimeSeconds > 0 ? duration(worker.uptimeSeconds) : "-", String(worker.restarts),
             worker.lastExitReason.isEmpty ? "-" : worker.lastExitReason]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
        for row in [header] + rows {
            lines.append(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ status: StatusResponse) -> String {
        let object: [String: Any] = [
            "supervisor": ["pid": status.supervisorPid, "uptime_seconds": status.supervisorUptimeSeconds,
                           "data_directory": status.dataDirectory],
            "workers": status.workers.map { worker -> [String: Any] in
                ["role": worker.role.serviceRole?.rawValue ?? "unknown", "pid": worker.pid, "state": worker.state,
                 "uptime_seconds": worker.uptimeSeconds, "restarts": worker.restarts,
                 "last_exit_reason": worker.lastExitReason]
            },
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds)
        if total < 60 { return String(format: "%.1fs", seconds) }
        if total < 3600 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
        return "\(total / 3600)h\(String(format: "%02d", (total % 3600) / 60))m"
    }
}
