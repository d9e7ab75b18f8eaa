import ArgumentParser
import Foundation
import Logging
import VoxChaos
import VoxCore

#if canImport(Glibc)
import Glibc
#endif

/// `voxsync-bench chaos`: a real voxsyncd under a mixed client load while workers are SIGKILLed
/// and SIGSTOPped at random and PostgreSQL and Redis are stopped and started; then it lets the
/// service settle and audits what it was told against what it finds. `launch/chaos` starts
/// PostgreSQL and Redis for it.
struct ChaosBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Kill and stop workers (and PostgreSQL/Redis) under load, then audit: nothing acknowledged lost, every answer as acknowledged, PostgreSQL = SQLite, every worker back.",
        discussion: """
            Rates are a number per second (2, 0.5/s, 30/min) or an interval (500ms, 3s); 0 is off. \
            Exits 0 when every audit check passes, 1 when one fails, 130 when interrupted twice. \
            Ctrl-C once ends the chaos early and still audits; twice stops at once, and still cleans up \
            (resumes stopped workers, starts a stopped server again, stops voxsyncd).
            """)

    @Option(help: "Seconds of load and chaos (1-86400).")
    var duration = 60

    @Option(help: "Concurrent clients (1-256), each with a connection and speakers of its own.")
    var clients = 8

    @Option(help: "Speakers per client (1-100000).")
    var speakersPerClient = 50

    @Option(help: "SIGKILLs of a random worker: per second, or the interval between them.")
    var killRate = "1/s"

    @Option(help: "SIGSTOPs of a random worker (killed by the supervisor's heartbeat timeout).")
    var stopRate = "0.1/s"

    @Option(help: "Comma-separated roles to hit: cache, sync, metrics, prefetch.")
    var workers = "cache,sync,metrics,prefetch"

    @Option(help: "PostgreSQL whose user may create databases; the run syncs into a new database on it.")
    var postgresURL: String?

    @Option(help: "Shell command that stops PostgreSQL (with --postgres-start-cmd: bounce it).")
    var postgresStopCmd: String?

    @Option(help: "Shell command that starts PostgreSQL again.")
    var postgresStartCmd: String?

    @Option(help: "PostgreSQL outages during the run (default 1 when the commands are given).")
    var postgresBounces: Int?

    @Option(help: "Redis to mirror metrics into (redis://host:port or unix:///path).")
    var redisURL: String?

    @Option(help: "Shell command that stops Redis (with --redis-start-cmd: bounce it).")
    var redisStopCmd: String?

    @Option(help: "Shell command that starts Redis again.")
    var redisStartCmd: String?

    @Option(help: "Redis outages during the run (default 1 when the commands are given).")
    var redisBounces: Int?

    @Option(help: "Seconds each outage lasts (0.1-600).")
    var outage = 2.0

    @Option(help: "Seed of the schedule and the load (default: random, printed).")
    var seed: UInt64?

    @Option(help: "Seconds to wait for the service to settle after the chaos (1-3600).")
    var settle = 60

    @Option(help: "Path of voxsyncd (default: next to voxsync-bench).")
    var daemon: String?

    @Option(help: "Data directory for voxsyncd: must not exist or be empty (default: a new temporary one, removed after a clean run).")
    var dataDir: String?

    @Option(help: "Pause of each client between two operations, in ms (0-10000).")
    var opIntervalMs = 0

    @Option(help: "Supervisor heartbeat timeout in ms (100-60000): how long a SIGSTOPped worker hangs.")
    var heartbeatTimeoutMs = 1000

    @Option(help: "Fail the audit unless every targeted worker was SIGKILLed at least this often.")
    var requireKills = 0

    // MARK: Validation

    var roles: [String] { workers.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } }

    func validate() throws {
        guard (1...86_400).contains(duration) else { throw ValidationError("--duration must be 1-86400 seconds; got \(duration)") }
        guard (1...256).contains(clients) else { throw ValidationError("--clients must be 1-256; got \(clients)") }
        guard (1...100_000).contains(speakersPerClient) else { throw ValidationError("--speakers-per-client must be 1-100000") }
        do { _ = try ChaosRate(parsing: killRate) } catch { throw ValidationError("--kill-rate: \(error.message)") }
        do { _ = try ChaosRate(parsing: stopRate) } catch { throw ValidationError("--stop-rate: \(error.message)") }
        let known = ServiceRole.allCases.map(\.rawValue)
        guard !roles.isEmpty, roles.allSatisfy(known.contains), Set(roles).count == roles.count else {
            throw ValidationError("--workers must list distinct roles among \(known.joined(separator: ", ")); got '\(workers)'")
        }
        if let postgresURL {
            do { _ = try PostgresURL(parsing: postgresURL) } catch { throw ValidationError("--postgres-url: \(error)") }
        }
        if let redisURL {
            do { _ = try RedisURL(parsing: redisURL) } catch { throw ValidationError("--redis-url: \(error)") }
        }
        try Self.validateBounces("postgres", url: postgresURL, stop: postgresStopCmd, start: postgresStartCmd, bounces: postgresBounces)
        try Self.validateBounces("redis", url: redisURL, stop: redisStopCmd, start: redisStartCmd, bounces: redisBounces)
        guard outage >= 0.1, outage <= 600 else { throw ValidationError("--outage must be 0.1-600 seconds; got \(outage)") }
        guard (1...3600).contains(settle) else { throw ValidationError("--settle must be 1-3600 seconds; got \(settle)") }
        guard (0...10_000).contains(opIntervalMs) else { throw ValidationError("--op-interval-ms must be 0-10000") }
        guard (100...60_000).contains(heartbeatTimeoutMs) else { throw ValidationError("--heartbeat-timeout-ms must be 100-60000") }
        guard requireKills >= 0 else { throw ValidationError("--require-kills must be 0 or more") }
        let path = daemon ?? DaemonProcess.siblingExecutable
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("no voxsyncd at \(path); build it (swift build --product voxsyncd) or give --daemon PATH")
        }
        if let dataDir, let entries = try? FileManager.default.contentsOfDirectory(atPath: dataDir), !entries.isEmpty {
            throw ValidationError("--data-dir \(dataDir) is not empty; the audit compares the whole store, so give a new or empty directory")
        }
    }

    static func validateBounces(_ name: String, url: String?, stop: String?, start: String?, bounces: Int?) throws {
        switch (stop, start) {
        case (nil, nil):
            if let bounces, bounces > 0 {
                throw ValidationError("--\(name)-bounces needs --\(name)-stop-cmd and --\(name)-start-cmd")
            }
        case (.some, .some):
            guard url != nil else { throw ValidationError("--\(name)-stop-cmd/--\(name)-start-cmd need --\(name)-url (the server they bounce)") }
            guard (0...100).contains(bounces ?? 1) else { throw ValidationError("--\(name)-bounces must be 0-100") }
        default:
            throw ValidationError("give both --\(name)-stop-cmd and --\(name)-start-cmd, or neither")
        }
    }

    // MARK: Run

    func run() async throws {
        let interrupts = ChaosInterrupts.install()
        let seed = self.seed ?? UInt64.random(in: 0...999_999)
        let temporary = dataDir == nil
        let dataDirectory = dataDir ?? NSTemporaryDirectory() + "voxsync-chaos-" + String(UUID().uuidString.prefix(8))
        let logPath = dataDirectory + ".voxsyncd.log"
        let schedule = ChaosSchedule.make(
            duration: .seconds(duration), roles: roles, kill: try ChaosRate(parsing: killRate), stop: try ChaosRate(parsing: stopRate),
            postgresBounces: postgresStopCmd == nil ? 0 : (postgresBounces ?? 1), redisBounces: redisStopCmd == nil ? 0 : (redisBounces ?? 1),
            downFor: .milliseconds(Int(outage * 1000)), seed: seed)
        let run = ChaosRun(options: self, seed: seed, schedule: schedule, dataDirectory: dataDirectory, logPath: logPath, interrupts: interrupts)
        let passed: Bool
        do {
            passed = try await run.execute()
        } catch {
            await run.cleanUp()
            print("chaos: \(error)", to: &standardError)
            if let daemon = run.daemonIfStarted { print("voxsyncd's log (\(daemon.logPath)):\n\(daemon.logTail())", to: &standardError) }
            print("data directory kept: \(dataDirectory)", to: &standardError)
            throw ExitCode(interrupts.count >= 2 ? 130 : 1)
        }
        await run.cleanUp()
        if passed && temporary {
            try? FileManager.default.removeItem(atPath: dataDirectory)
            try? FileManager.default.removeItem(atPath: logPath)
        } else {
            print("data directory kept: \(dataDirectory) (voxsyncd's log: \(logPath))", to: &standardError)
        }
        if !passed { throw ExitCode(1) }
    }
}

/// SIGINT and SIGTERM during a chaos run: the first ends the chaos early (the audit still
/// runs), the second stops at once.
final class ChaosInterrupts: Sendable {
    private let received = Locked(0)
    private let sources = Locked<[DispatchSourceSignal]>([])

    var count: Int { received.current }

    static func install() -> ChaosInterrupts {
        let interrupts = ChaosInterrupts()
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                let count = interrupts.received.withLock { $0 += 1; return $0 }
                let message = count == 1
                    ? "\ninterrupted: ending the chaos now, then settling and auditing (interrupt again to stop at once)\n"
                    : "\ninterrupted again: cleaning up and stopping\n"
                FileHandle.standardError.write(Data(message.utf8))
            }
            source.resume()
            interrupts.sources.withLock { $0.append(source) }
        }
        return interrupts
    }
}
