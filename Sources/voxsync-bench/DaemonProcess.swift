import Foundation
import VoxTransport

/// A real `voxsyncd` started for a benchmark, in a data directory of its own, stopped with
/// SIGTERM when the benchmark ends — or by itself should the benchmark be killed
/// (`--exit-with-parent`).
final class DaemonProcess {
    let process = Process()
    let dataDirectory: String
    var socketPath: String { dataDirectory + "/run/voxsync.sock" }

    /// `voxsyncd` next to this benchmark's executable, as `swift build` lays them out.
    static var siblingExecutable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("voxsyncd").path
    }

    init(executable: String, arguments: [String] = []) throws {
        dataDirectory = "/tmp/vxbench-" + String(UUID().uuidString.prefix(8))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--data-dir", dataDirectory, "--log-level", "error", "--exit-with-parent"] + arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while !SocketPath.isListening(socketPath) {
            guard process.isRunning, Date() < deadline else {
                throw BenchError("voxsyncd did not start listening on \(socketPath)")
            }
            usleep(10_000)
        }
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    deinit { stop() }
}
