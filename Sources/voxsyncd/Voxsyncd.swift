import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import VoxCore
import VoxTransport
import VoxWire

/// `voxsyncd`: the voxsync service.
///
/// This build serves the wire protocol on the client socket (handshake, ping) and answers the
/// profile operations `UNAVAILABLE` until the cache worker lands; the supervisor and its
/// workers replace this single process (see the issues in the tracker).
@main
struct Voxsyncd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "voxsyncd",
        abstract: "Run the voxsync service.")

    @Option(name: .long, help: "Data directory (default: $VOXSYNC_DATA_DIR or ~/.local/share/voxsync).")
    var dataDir: String?

    @Option(name: .long, help: "Client socket path (default: <data-dir>/run/voxsync.sock).")
    var socket: String?

    @Option(name: .long, help: "Event-loop threads serving client connections (1-64). One keeps every answer on one core and leaves the others to clients; more only helps with many busy clients on many cores.")
    var eventLoopThreads: Int = 1

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got '\(logLevel)'")
        }
        if let socket { try SocketPath.validate(socket) }
        guard (1...64).contains(eventLoopThreads) else {
            throw ValidationError("--event-loop-threads must be between 1 and 64; got \(eventLoopThreads)")
        }
    }

    func run() async throws {
        var logger = Logger(label: "voxsyncd")
        logger.logLevel = Logger.Level(rawValue: logLevel)!
        let dataDirectory = dataDir ?? DefaultPaths.dataDirectory()
        let runDirectory = DefaultPaths.runDirectory(dataDirectory: dataDirectory)
        let socketPath = socket ?? runDirectory + "/voxsync.sock"
        try createPrivateDirectory(dataDirectory)
        try createPrivateDirectory(runDirectory)

        let identity = ServerIdentity(serverName: "voxsyncd 0.1.0", instanceID: try instanceID(in: dataDirectory))
        let server = try await UnixSocketServer.bind(
            path: socketPath, identity: identity, responder: NotYetServing(),
            group: MultiThreadedEventLoopGroup(numberOfThreads: eventLoopThreads), logger: logger)
        print("voxsyncd: serving protocol v\(WireProtocol.version) on \(socketPath) (data: \(dataDirectory), instance \(identity.instanceID))")
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: ServerService(server: server), successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        print("voxsyncd: stopped")
    }

    private func createPrivateDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ValidationError("cannot create directory \(path): \(error.localizedDescription); choose another with --data-dir")
        }
    }

    /// A stable id per data directory, created on first start.
    private func instanceID(in dataDirectory: String) throws -> String {
        let path = dataDirectory + "/instance-id"
        if let existing = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !existing.isEmpty {
            return existing
        }
        let id = UUID().uuidString.lowercased()
        try id.write(toFile: path, atomically: true, encoding: .utf8)
        return id
    }
}

/// Runs the socket server until graceful shutdown, then drains it.
struct ServerService: Service {
    let server: UnixSocketServer

    func run() async throws {
        try? await gracefulShutdown()
        await server.shutdown()
    }
}

/// Answers every profile operation `UNAVAILABLE` until the cache worker exists.
struct NotYetServing: ServerResponder {
    func respond(to request: Envelope.OneOf_Message, connection: ConnectionInfo) -> ServerResponse {
        var error = ErrorMessage()
        error.code = .unavailable
        error.message = "\(request.name) is not served by this build of voxsyncd yet (only hello and ping are)"
        return .now(.error(error))
    }
}
