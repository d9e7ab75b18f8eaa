import Foundation
import VoxTransport

#if canImport(Glibc)
import Glibc
#endif

/// A value shared between the chaos run's tasks.
///
/// `@unchecked Sendable`: `value` is only touched inside `withLock`, under `lock`.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    var current: Value { withLock { $0 } }
}

/// The voxsyncd a chaos run starts: its own process group (a Ctrl-C reaches the run, which
/// stops it itself), its log in a file. `--exit-with-parent` stops it should the run be
/// killed or crash before it could.
final class ChaosDaemon: Sendable {
    let child: ChildProcess
    let dataDirectory: String
    let logPath: String
    var pid: pid_t { child.pid }
    var socketPath: String { dataDirectory + "/run/voxsync.sock" }
    var controlPath: String { dataDirectory + "/run/control.sock" }
    var syncPath: String { dataDirectory + "/run/sync.sock" }

    init(executable: String, dataDirectory: String, logPath: String, settings: [String]) throws {
        self.dataDirectory = dataDirectory
        self.logPath = logPath
        child = try ChildProcess([executable, "--data-dir", dataDirectory, "--exit-with-parent"] + settings.flatMap { ["--set", $0] },
                                 output: logPath, errorsToOutput: true, newGroup: true)
    }

    var exitCode: Int32? { child.exitCode }
    var isRunning: Bool { child.isRunning }

    /// Waits until the client socket accepts connections.
    func waitUntilListening(timeout: Duration) async throws {
        switch await child.waitUntilListening(on: socketPath, timeout: timeout) {
        case .listening: return
        case .exited(let code): throw BenchError("voxsyncd exited with code \(code) at start; its log:\n\(logTail())")
        case .timedOut: throw BenchError("voxsyncd did not listen on \(socketPath) within \(timeout)")
        }
    }

    /// SIGTERM (a graceful stop), SIGKILL after `timeout`; returns the exit code.
    func stop(timeout: Duration) async -> Int32 {
        await child.stop(grace: timeout)
    }

    /// The last lines of the daemon's log, for error messages.
    func logTail(lines: Int = 20) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

/// /proc, read for the audit.
enum ProcFS {
    /// State letter and parent of `pid`, or nil when it does not exist.
    static func stat(_ pid: Int32) -> (state: Character, parent: Int32)? {
        guard pid > 0, let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 2, let state = fields[0].first, let parent = Int32(fields[1]) else { return nil }
        return (state, parent)
    }

    /// Whether `pid` runs (a zombie has ended, it only waits to be reaped).
    static func isAlive(_ pid: Int32) -> Bool {
        guard let state = stat(pid)?.state else { return false }
        return state != "Z" && state != "X"
    }

    /// Every process started by the supervisor `supervisor`: voxsyncd gives each worker its pid
    /// in `VOXSYNC_SUPERVISOR_PID`, which identifies this run's workers among any others.
    static func workers(of supervisor: Int32) -> [(pid: Int32, parent: Int32, state: Character)] {
        let marker = Array("VOXSYNC_SUPERVISOR_PID=\(supervisor)".utf8)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry in
            guard let pid = Int32(entry), let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
            let variables = environment.split(separator: 0)
            guard variables.contains(where: { Array($0) == marker }), let info = stat(pid) else { return nil }
            return (pid, info.parent, info.state)
        }
    }
}
