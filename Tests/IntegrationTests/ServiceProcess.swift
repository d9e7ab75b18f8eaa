import CVoxSys
import Foundation
import VoxClient
import VoxCore
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// Directory holding the built executables: $VOXSYNC_BIN_DIR (set by launch/test), else the
/// directory of the test runner, where `swift build` puts them too.
let binDirectory: String = {
    if let explicit = ProcessInfo.processInfo.environment["VOXSYNC_BIN_DIR"], !explicit.isEmpty { return explicit }
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("voxsyncd").path) {
        url.deleteLastPathComponent()
    }
    return url.path
}()

struct IntegrationError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Whether `pid` is a live process (zombies count as dead: they run nothing).
func isAlive(_ pid: Int32) -> Bool {
    guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
    guard let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(close, offsetBy: 2)]
    return state != "Z" && state != "X"
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes, with one last look
/// after the deadline (a test task starved past it still sees what has happened).
func eventually(timeout: Duration = .seconds(10), _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    if try await condition() { return }
    throw IntegrationError("timed out after \(timeout) waiting for: \(what)")
}

/// The supervisor's status, asked on its control socket.
func supervisorStatus(controlPath: String) async throws -> StatusResponse {
    var configuration = VoxClientConfiguration(socketPath: controlPath)
    configuration.clientName = "integration-tests"
    configuration.connectTimeout = .seconds(2)
    let client = VoxClient(configuration: configuration)
    defer { client.close() }
    guard case .statusOk(let status) = try await client.send(.status(.init())) else {
        throw IntegrationError("no status answer")
    }
    return status
}

/// A real `voxsyncd` (supervisor and workers) in a data directory of its own.
final class ServiceProcess: @unchecked Sendable {
    let dataDirectory: String
    let process = Process()
    let logPath: String
    var socketPath: String { dataDirectory + "/run/voxsync.sock" }
    var controlPath: String { dataDirectory + "/run/control.sock" }
    private var seenWorkerPIDs: Set<Int32> = []

    /// Fast heartbeats so a dead worker is noticed within a test's patience, with a timeout
    /// that a loaded CI machine (the whole suite on two cores beside PostgreSQL and Redis)
    /// does not mistake for a hang: a healthy worker killed for a late answer would break
    /// every test that counts restarts. The hang test sets its own 800 ms.
    static let testSettings = [
        "heartbeat_interval_ms=100", "heartbeat_timeout_ms=3000", "shutdown_timeout_ms=10000", "log_level=info",
    ]

    init(settings: [String] = [], dataDirectory: String? = nil) throws {
        self.dataDirectory = dataDirectory ?? "/tmp/vxi-" + String(UUID().uuidString.prefix(8))
        logPath = "/tmp/vxi-" + String(UUID().uuidString.prefix(8)) + ".log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: binDirectory + "/voxsyncd")
        process.arguments = ["--data-dir", self.dataDirectory, "--exit-with-parent"] + (Self.testSettings + settings).flatMap { ["--set", $0] }
        let log = FileHandle(forWritingAtPath: logPath)!
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    /// Starts a service and waits until every worker is ready.
    static func started(settings: [String] = []) async throws -> ServiceProcess {
        let service = try ServiceProcess(settings: settings)
        try await service.waitUntilAllReady()
        return service
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func client(socket: String? = nil, configure: (inout VoxClientConfiguration) -> Void = { _ in }) -> VoxClient {
        var configuration = VoxClientConfiguration(socketPath: socket ?? socketPath)
        configuration.clientName = "integration-tests"
        configure(&configuration)
        return VoxClient(configuration: configuration)
    }

    func status() async throws -> StatusResponse {
        let status = try await supervisorStatus(controlPath: controlPath)
        for worker in status.workers where worker.pid > 0 { seenWorkerPIDs.insert(worker.pid) }
        return status
    }

    func worker(_ role: WorkerRole, in status: StatusResponse) -> WorkerStatus {
        status.workers.first { $0.role == role }!
    }

    func waitUntilAllReady(timeout: Duration = .seconds(30)) async throws {
        try await eventually(timeout: timeout, "every worker ready\n\(log)") {
            guard process.isRunning else { throw IntegrationError("voxsyncd exited early:\n\(log)") }
            guard let status = try? await status() else { return false }
            return status.workers.count == 4 && status.workers.allSatisfy { $0.state == "ready" }
        }
    }

    /// Every worker pid this test has seen.
    var workerPIDs: Set<Int32> { seenWorkerPIDs }

    func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Sends SIGTERM and waits for the exit status.
    func terminate(timeout: Duration = .seconds(20)) async throws -> Int32 {
        signal(SIGTERM)
        try await eventually(timeout: timeout, "voxsyncd to exit after SIGTERM") { !process.isRunning }
        return process.terminationStatus
    }

    /// Kills whatever is left (supervisor first, then any worker seen) and removes the files.
    func cleanUp() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        for pid in seenWorkerPIDs where isAlive(pid) { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(atPath: dataDirectory)
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

/// Runs `argv` (absolute program path first) to completion and returns its exit code, on a
/// thread of its own: `initdb`, `pg_ctl` or `redis-server` can take a second, which must not
/// hold one of the cooperative pool's (here two) threads. (Foundation's
/// `Process.waitUntilExit` was seen never to return once `pg_ctl start` had left a daemon
/// behind, so this is `posix_spawn` and `waitpid`.)
func runCommand(_ argv: [String]) async throws -> Int32 {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, Error>) in
        Thread.detachNewThread { continuation.resume(with: Result { try runCommandBlocking(argv) }) }
    }
}

/// `runCommand` on the calling thread (for clean-up in a `defer`, where nothing can await).
func runCommandBlocking(_ argv: [String]) throws -> Int32 {
    waitForExit(try spawnCommand(argv))
}

/// Starts `argv` (absolute program path first) with `posix_spawn`; reap it with `waitForExit`.
/// No signal blocked or ignored, as a shell would start it: the test runner's threads block
/// signals, and a mask is inherited.
func spawnCommand(_ argv: [String]) throws -> pid_t {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    voxsync_spawnattr_clean_signals(&attributes, 0)
    var cArguments = argv.map { strdup($0) } + [nil]
    defer { cArguments.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, argv[0], nil, &attributes, &cArguments, environ)
    guard spawned == 0 else { throw IntegrationError("cannot run \(argv[0]): \(String(cString: strerror(spawned)))") }
    return pid
}

/// Waits for the child `pid` and returns its exit code (128 + the signal if a signal ended it).
func waitForExit(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return voxsync_wait_shell_code(status)
}
