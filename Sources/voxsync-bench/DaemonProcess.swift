import Foundation

/// A real `voxsyncd` started for a benchmark, in a data directory of its own, stopped with
/// SIGTERM when the benchmark ends — or by itself should the benchmark be killed
/// (`--exit-with-parent`).
final class DaemonProcess {
    let child: ChildProcess
    let dataDirectory: String
    var socketPath: String { dataDirectory + "/run/voxsync.sock" }

    /// `voxsyncd` next to this benchmark's executable, as `swift build` lays them out.
    static var siblingExecutable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("voxsyncd").path
    }

    init(executable: String, arguments: [String] = []) throws {
        let dataDirectory = "/tmp/vxbench-" + String(UUID().uuidString.prefix(8))
        self.dataDirectory = dataDirectory
        child = try ChildProcess([executable, "--data-dir", dataDirectory, "--log-level", "error", "--exit-with-parent"] + arguments)
        switch child.waitUntilListening(on: socketPath, timeout: .seconds(30)) {
        case .listening:
            return
        case .exited(let code):
            stop()
            throw BenchError("voxsyncd exited with code \(code) before it listened on \(socketPath) (its errors are above)")
        case .timedOut:
            stop()
            throw BenchError("voxsyncd did not start listening on \(socketPath) within 30 s")
        }
    }

    /// SIGTERM (SIGKILL if it has not stopped within 30 s), then the data directory removed.
    func stop() {
        child.stop(grace: .seconds(30))
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    deinit { stop() }
}
