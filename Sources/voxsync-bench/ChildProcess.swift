import CVoxSys
import Foundation
import VoxTransport

#if canImport(Glibc)
import Glibc
#endif

/// A process a benchmark starts and stops: `voxsyncd`, `redis-server`. Started with
/// `posix_spawnp` (`spawnProcess`), reaped by a thread of its own the moment it ends, so a
/// zombie never counts as running and nothing waits on Foundation's `Process`, whose
/// `waitUntilExit` was seen to spin forever once a child had left a daemon behind.
///
/// Signals go out under the same lock under which the reaper collects the exit status, and
/// only while there is none: the pid cannot have been reaped, and so cannot belong to another
/// process, when `stop` signals it.
final class ChildProcess: Sendable {
    let pid: pid_t
    private let exitStatus = Locked<Int32?>(nil)
    /// Entered at start, left by the reaper once the exit status is in.
    private let ended = DispatchGroup()

    /// Starts `argv` (see `spawnProcess` for `output`, `errorsToOutput` and `newGroup`).
    init(_ argv: [String], output: String? = nil, errorsToOutput: Bool = false, newGroup: Bool = false) throws {
        pid = try spawnProcess(argv, output: output, errorsToOutput: errorsToOutput, newGroup: newGroup)
        let pid = pid
        let exitStatus = exitStatus
        let ended = ended
        ended.enter()
        Thread.detachNewThread {
            // Wait for the exit without reaping (the pid stays ours), then reap under the lock.
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR {}
            exitStatus.withLock { $0 = reap(pid) }
            ended.leave()
        }
    }

    /// Sends `signal` unless the process has been reaped.
    func signal(_ signal: Int32) {
        exitStatus.withLock { status in
            if status == nil { kill(pid, signal) }
        }
    }

    /// The exit code once it has ended (128 + the signal if a signal ended it).
    var exitCode: Int32? { exitStatus.current }
    var isRunning: Bool { exitCode == nil }

    /// Blocks until the process has ended, or `timeout` has passed (then nil); its exit code.
    func waitForExit(timeout: Duration? = nil) -> Int32? {
        if let timeout {
            let nanoseconds = Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000)
            guard ended.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success else { return nil }
        } else {
            ended.wait()
        }
        return exitCode
    }

    /// How `waitUntilListening` ended.
    enum ListeningOutcome: Equatable {
        case listening
        case exited(code: Int32)
        case timedOut
    }

    /// Polls every 10 ms until `socketPath` accepts connections, the process ends, or
    /// `timeout` passes. Blocks the calling thread.
    func waitUntilListening(on socketPath: String, timeout: Duration) -> ListeningOutcome {
        let deadline = ContinuousClock.now + timeout
        while !SocketPath.isListening(socketPath) {
            if let code = exitCode { return .exited(code: code) }
            guard ContinuousClock.now < deadline else { return .timedOut }
            usleep(10_000)
        }
        return .listening
    }

    /// SIGTERM, then SIGKILL if it is still running after `grace`; returns the exit code.
    /// Blocks the calling thread.
    @discardableResult
    func stop(grace: Duration) -> Int32 {
        signal(SIGTERM)
        if let code = waitForExit(timeout: grace) { return code }
        signal(SIGKILL)
        return waitForExit() ?? -1
    }

    /// `waitUntilListening` on a thread of its own, for async callers (the cooperative pool
    /// has two threads here; polling on one for a minute would halve it).
    func waitUntilListening(on socketPath: String, timeout: Duration) async -> ListeningOutcome {
        await offPool { self.waitUntilListening(on: socketPath, timeout: timeout) }
    }

    /// `stop` on a thread of its own, for async callers.
    func stop(grace: Duration) async -> Int32 {
        await offPool { self.stop(grace: grace) }
    }

    private func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: body()) }
        }
    }
}

/// Starts `argv` with `posix_spawnp` (stdin from /dev/null, stdout to `output` or /dev/null,
/// stderr inherited or to `output` too, no other descriptor) and returns its pid; `argv[0]` is a path, or a name looked up in `PATH`. Own
/// process group when `newGroup`, so a Ctrl-C in the terminal reaches the chaos run, which then
/// stops the child itself.
func spawnProcess(_ argv: [String], output: String? = nil, errorsToOutput: Bool = false, newGroup: Bool = false) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
    if errorsToOutput { posix_spawn_file_actions_adddup2(&actions, 1, 2) }
    // Nothing else of this process's: a daemon holding one of its pipes or sockets would keep
    // the other end open for as long as it runs.
    voxsync_spawn_close_from(&actions, 3)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // The chaos run ignores SIGINT and SIGTERM to handle them itself; its children do not.
    voxsync_spawnattr_clean_signals(&attributes, newGroup ? 1 : 0)
    var cArguments = argv.map { strdup($0) } + [nil]
    defer { cArguments.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawnp(&pid, argv[0], &actions, &attributes, &cArguments, environ)
    guard spawned == 0 else { throw BenchError("cannot run \(argv[0]): \(String(cString: strerror(spawned)))") }
    return pid
}

/// Reaps the child `pid` (waiting for it if it has not ended) and returns its exit code,
/// 128 + signal when a signal ended it.
private func reap(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return voxsync_wait_shell_code(status)
}

/// Runs a shell command line (`/bin/sh -c`) to completion; its standard output is discarded.
func runShell(_ command: String) async throws -> Int32 {
    let shell = try ChildProcess(["/bin/sh", "-c", command])
    return await shell.exited()
}

extension ChildProcess {
    /// Waits, on a thread of its own, until the process has ended by itself; its exit code.
    func exited() async -> Int32 {
        await offPool { self.waitForExit() ?? -1 }
    }
}
