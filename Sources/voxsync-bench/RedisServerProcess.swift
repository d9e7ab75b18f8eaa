import Foundation
import VoxTransport

#if canImport(Glibc)
import Glibc
#endif

/// A `redis-server` of a benchmark's own, on a Unix socket in a fresh directory under /tmp (the
/// file system voxsyncd's benchmark stores use), with its append-only file fsynced before every
/// reply (`appendfsync always`): the durable reference for enrolls. Stopped with SIGTERM when the
/// benchmark ends, its directory removed.
final class RedisServerProcess {
    let pid: pid_t
    let directory: String
    var socketPath: String { directory + "/redis.sock" }
    private var running = true

    init(executable: String) throws {
        let directory = "/tmp/vxbench-redis-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        self.directory = directory
        do {
            pid = try spawnProcess([
                executable, "--port", "0", "--unixsocket", directory + "/redis.sock", "--unixsocketperm", "700",
                "--dir", directory, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                "--logfile", directory + "/redis.log",
            ])
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        let deadline = Date().addingTimeInterval(10)
        while !SocketPath.isListening(socketPath) {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { running = false }
            guard running, Date() < deadline else {
                let log = (try? String(contentsOfFile: directory + "/redis.log", encoding: .utf8)) ?? ""
                stop()
                throw BenchError("\(executable) did not start listening on \(socketPath); its log:\n\(log.suffix(2000))")
            }
            usleep(10_000)
        }
    }

    /// SIGTERM, and SIGKILL if it has not exited 10 s later.
    func stop() {
        if running {
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            var status: Int32 = 0
            while waitpid(pid, &status, WNOHANG) == 0 {
                if Date() > deadline {
                    kill(pid, SIGKILL)
                    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                    break
                }
                usleep(10_000)
            }
            running = false
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }
}
