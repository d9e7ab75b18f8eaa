import ArgumentParser
import Foundation
import VoxClient
import VoxCore
import VoxWire

/// `voxsync`: the command-line client.
///
/// Exit codes follow sysexits(3): 0 success, 64 usage error, 65 bad input data, 69 service
/// unavailable, 70 internal error, 75 temporary failure (timeout), 76 protocol error.
@main
struct Voxsync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "voxsync",
        abstract: "Talk to a running voxsync service.",
        discussion: "The socket is --socket, else $VOXSYNC_SOCKET, else ~/.local/share/voxsync/run/voxsync.sock.",
        subcommands: [
            EnrollCommand.self, GetCommand.self, VerifyCommand.self, IdentifyCommand.self, DeleteCommand.self,
            ListCommand.self, StatsCommand.self, DemoDataCommand.self, PingCommand.self, StatusCommand.self, SyncCommand.self,
            PrefetchCommand.self,
        ])
}

/// Options every subcommand shares.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "Path of the voxsync socket (default: $VOXSYNC_SOCKET or ~/.local/share/voxsync/run/voxsync.sock).")
    var socket: String?

    @Option(name: .long, help: "Seconds to wait for an answer, reconnects included (0.001-3600).")
    var timeout: Double = 5

    func validate() throws {
        guard timeout >= 0.001 && timeout <= 3600 else {
            throw ValidationError("--timeout must be between 0.001 and 3600 seconds; got \(timeout)")
        }
        if let socket, socket.isEmpty { throw ValidationError("--socket must not be empty") }
    }

    func makeClient(socketPath: String? = nil) -> VoxClient {
        var configuration = VoxClientConfiguration(socketPath: socketPath ?? socket ?? DefaultPaths.clientSocket())
        configuration.clientName = "voxsync-cli"
        configuration.requestTimeout = .milliseconds(Int64(timeout * 1000))
        configuration.connectTimeout = .milliseconds(Int64(min(timeout, 2) * 1000))
        return VoxClient(configuration: configuration)
    }
}

/// Turns client errors into a message on stderr and a sysexits code.
func fail(_ error: any Error, socket: String) -> ExitCode {
    guard let error = error as? VoxClientError else {
        FileHandle.standardError.write(Data("voxsync: \(error)\n".utf8))
        return ExitCode(70)
    }
    let code: Int32
    var hint = ""
    switch error.code {
    case .unavailable:
        code = 69
        hint = "\nIs voxsyncd running? Start it with launch/run, or point --socket / VOXSYNC_SOCKET at its socket (tried \(socket))."
    case .timedOut: code = 75
    case .connectionLost: code = 75
    case .protocolViolation: code = 76
    case .server(let server):
        switch server {
        case .invalidArgument, .dimensionMismatch, .notFound, .conflict: code = 65
        case .unavailable, .overloaded: code = 69
        case .permissionDenied: code = 77
        default: code = 70
        }
    }
    FileHandle.standardError.write(Data("voxsync: \(error.message)\(hint)\n".utf8))
    return ExitCode(code)
}
