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

/// Starts `argv` with `posix_spawnp` (stdout to `output`, or /dev/null; stderr inherited, or to
/// `output` too) and returns its pid; `argv[0]` is a path, or a name looked up in `PATH`. Own
/// process group when `newGroup`, so a Ctrl-C in the terminal reaches the chaos run, which then
/// stops the child itself.
func spawnProcess(_ argv: [String], output: String? = nil, errorsToOutput: Bool = false, newGroup: Bool = false) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
    if errorsToOutput { posix_spawn_file_actions_adddup2(&actions, 1, 2) }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // Default dispositions: the chaos run ignores SIGINT/SIGTERM to handle them itself.
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGINT)
    sigaddset(&defaults, SIGTERM)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    // Nothing blocked: this process's threads block signals (Foundation's, NIO's), and a mask is
    // inherited — a redis-server started with SIGTERM blocked never stops on it.
    var unblocked = sigset_t()
    sigemptyset(&unblocked)
    posix_spawnattr_setsigmask(&attributes, &unblocked)
    var flags = Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
    if newGroup {
        posix_spawnattr_setpgroup(&attributes, 0)
        flags |= Int16(POSIX_SPAWN_SETPGROUP)
    }
    posix_spawnattr_setflags(&attributes, flags)
    var cArguments = argv.map { strdup($0) } + [nil]
    defer { cArguments.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawnp(&pid, argv[0], &actions, &attributes, &cArguments, environ)
    guard spawned == 0 else { throw BenchError("cannot run \(argv[0]): \(String(cString: strerror(spawned)))") }
    return pid
}

/// Waits for `pid` on a thread of its own (never on the cooperative pool, which has two
/// threads here) and returns its exit code, 128 + signal when a signal ended it.
func waitForExit(_ pid: pid_t) async -> Int32 {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            continuation.resume(returning: status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f))
        }
    }
}

/// Runs a shell command line (`/bin/sh -c`) to completion; its standard output is discarded.
func runShell(_ command: String) async throws -> Int32 {
    let pid = try spawnProcess(["/bin/sh", "-c", command])
    return await waitForExit(pid)
}

/// The voxsyncd a chaos run starts: its own process group, its log in a file, its exit
/// status collected by a thread of its own. Being in a group of its own, a Ctrl-C of the run
/// does not reach it: `--exit-with-parent` stops it when the run ends that way.
final class ChaosDaemon: Sendable {
    let pid: pid_t
    let dataDirectory: String
    let logPath: String
    private let exitStatus = Locked<Int32?>(nil)
    var socketPath: String { dataDirectory + "/run/voxsync.sock" }
    var controlPath: String { dataDirectory + "/run/control.sock" }
    var syncPath: String { dataDirectory + "/run/sync.sock" }

    init(executable: String, dataDirectory: String, logPath: String, settings: [String]) throws {
        self.dataDirectory = dataDirectory
        self.logPath = logPath
        pid = try spawnProcess([executable, "--data-dir", dataDirectory, "--exit-with-parent"] + settings.flatMap { ["--set", $0] },
                               output: logPath, errorsToOutput: true, newGroup: true)
        let pid = pid
        let exitStatus = exitStatus
        Task.detached { let code = await waitForExit(pid); exitStatus.withLock { $0 = code } }
    }

    var exitCode: Int32? { exitStatus.current }
    var isRunning: Bool { exitStatus.current == nil }

    /// Waits until the client socket accepts connections.
    func waitUntilListening(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while !SocketPath.isListening(socketPath) {
            guard isRunning else { throw BenchError("voxsyncd exited with code \(exitCode ?? -1) at start; its log:\n\(logTail())") }
            guard ContinuousClock.now < deadline else { throw BenchError("voxsyncd did not listen on \(socketPath) within \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// SIGTERM (a graceful stop), SIGKILL after `timeout`; returns the exit code.
    func stop(timeout: Duration) async -> Int32 {
        if isRunning { kill(pid, SIGTERM) }
        let deadline = ContinuousClock.now + timeout
        while isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if isRunning { kill(pid, SIGKILL) }
        while isRunning { try? await Task.sleep(for: .milliseconds(20)) }
        return exitCode ?? -1
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
