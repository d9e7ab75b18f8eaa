import Foundation

/// A `redis-server` of a benchmark's own, on a Unix socket in a fresh directory under /tmp (the
/// file system voxsyncd's benchmark stores use), with its append-only file fsynced before every
/// reply (`appendfsync always`): the durable reference for enrolls. Stopped with SIGTERM when the
/// benchmark ends, its directory removed.
final class RedisServerProcess {
    let child: ChildProcess
    let directory: String
    var socketPath: String { directory + "/redis.sock" }

    init(executable: String) throws {
        let directory = "/tmp/vxbench-redis-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        self.directory = directory
        do {
            child = try ChildProcess([
                executable, "--port", "0", "--unixsocket", directory + "/redis.sock", "--unixsocketperm", "700",
                "--dir", directory, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                "--logfile", directory + "/redis.log",
            ])
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        guard child.waitUntilListening(on: socketPath, timeout: .seconds(10)) == .listening else {
            let log = (try? String(contentsOfFile: directory + "/redis.log", encoding: .utf8)) ?? ""
            stop()
            throw BenchError("\(executable) did not start listening on \(socketPath); its log:\n\(log.suffix(2000))")
        }
    }

    /// SIGTERM, and SIGKILL if it has not exited 10 s later; then its directory removed.
    func stop() {
        child.stop(grace: .seconds(10))
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }
}
