import Foundation
import Logging
import VoxChaos
import VoxClient
import VoxCore
import VoxSync
import VoxTransport
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// One chaos run: starts voxsyncd, drives the load and the chaos, lets the service settle,
/// audits, reports. `cleanUp` undoes whatever was started, also after an error or an interrupt.
final class ChaosRun: Sendable {
    struct Settings: Sendable {
        var duration: Duration
        var clients: Int
        var speakersPerClient: Int
        var roles: [String]
        var killRate: ChaosRate
        var stopRate: ChaosRate
        var postgresURL: PostgresURL?
        var postgresCommands: (stop: String, start: String)?
        var redisURL: String?
        var redisCommands: (stop: String, start: String)?
        var settle: Duration
        var executable: String
        var opInterval: Duration
        var heartbeatTimeoutMs: Int
        var requireKills: Int
    }

    let settings: Settings
    let seed: UInt64
    let schedule: ChaosSchedule
    let dataDirectory: String
    let logPath: String
    let interrupts: ChaosInterrupts
    private let daemon = Locked<ChaosDaemon?>(nil)
    private let record = Locked(ChaosRecord())
    private let down = Locked<Set<String>>([])
    let logger: Logger = {
        var logger = Logger(label: "voxsync-bench.chaos")
        logger.logLevel = .critical
        return logger
    }()

    init(options: ChaosBenchmark, seed: UInt64, schedule: ChaosSchedule, dataDirectory: String, logPath: String, interrupts: ChaosInterrupts) {
        func pair(_ stop: String?, _ start: String?) -> (stop: String, start: String)? {
            guard let stop, let start else { return nil }
            return (stop, start)
        }
        settings = Settings(
            duration: .seconds(options.duration), clients: options.clients, speakersPerClient: options.speakersPerClient,
            roles: options.roles, killRate: (try? ChaosRate(parsing: options.killRate)) ?? .off,
            stopRate: (try? ChaosRate(parsing: options.stopRate)) ?? .off,
            postgresURL: options.postgresURL.flatMap { try? PostgresURL(parsing: $0) },
            postgresCommands: pair(options.postgresStopCmd, options.postgresStartCmd),
            redisURL: options.redisURL, redisCommands: pair(options.redisStopCmd, options.redisStartCmd),
            settle: .seconds(options.settle), executable: options.daemon ?? DaemonProcess.siblingExecutable,
            opInterval: .milliseconds(options.opIntervalMs), heartbeatTimeoutMs: options.heartbeatTimeoutMs,
            requireKills: options.requireKills)
        self.seed = seed
        self.schedule = schedule
        self.dataDirectory = dataDirectory
        self.logPath = logPath
        self.interrupts = interrupts
    }

    var daemonIfStarted: ChaosDaemon? { daemon.current }

    // MARK: Phases

    /// The whole run; true when every audit check passed.
    func execute() async throws -> Bool {
        var remoteURL: PostgresURL?
        if let admin = settings.postgresURL {
            remoteURL = try await PostgresAdmin.createDatabase(on: admin, prefix: "voxsync_chaos_", logger: logger)
        }
        guard let metricsPort = LoopbackPort.unused() else { throw BenchError("no unused TCP port on 127.0.0.1 for the metrics endpoint") }
        var daemonSettings = [
            "log_level=warning", "heartbeat_interval_ms=100", "heartbeat_timeout_ms=\(settings.heartbeatTimeoutMs)",
            // Every kill should meet a worker whose backoff starts over, and none should be
            // slowed to the 5 s cap as flapping (correct behaviour, but it would only measure the cap).
            "stable_after_ms=500", "flap_threshold=10000", "restart_max_ms=1000",
            "sync_interval_ms=200", "postgres_timeout_ms=2000", "circuit_break_ms=500",
            "metrics_address=127.0.0.1:\(metricsPort)", "shutdown_timeout_ms=10000",
        ]
        if let remoteURL { daemonSettings.append("postgres_url=\(remoteURL.unredactedString)") }
        if let redis = settings.redisURL { daemonSettings.append("redis_url=\(redis)") }
        let started = try ChaosDaemon(executable: settings.executable, dataDirectory: dataDirectory, logPath: logPath, settings: daemonSettings)
        daemon.withLock { $0 = started }
        try await started.waitUntilListening(timeout: .seconds(60))
        let probes = ChaosProbes(daemon: started, metricsPort: metricsPort, remote: remoteURL, logger: logger)
        try await probes.waitUntilAllReady(timeout: .seconds(60))
        let dimension = try await probes.dimension()

        let targets = settings.roles.joined(separator: ",")
        print("chaos: seed \(seed); \(settings.clients) clients × \(settings.speakersPerClient) speakers for \(Int(settings.duration.chaosSeconds)) s; "
              + "SIGKILL \(settings.killRate), SIGSTOP \(settings.stopRate) of \(targets); "
              + "PostgreSQL outages \(schedule.postgresOutages.count), Redis outages \(schedule.redisOutages.count); data \(dataDirectory)",
              to: &standardError)

        // Load and chaos.
        let running = Locked(true)
        let watching = Locked(true)
        let tally = Locked(LoadTally())
        let monkey = ChaosMonkey(daemon: started, schedule: schedule, postgresCommands: settings.postgresCommands,
                                 redisCommands: settings.redisCommands, record: record, down: down)
        let startedAt = ContinuousClock.now
        let load = Task {
            await withTaskGroup(of: WriteLedger.self) { group in
                for index in 0..<settings.clients {
                    let client = ChaosLoadClient(index: index, speakers: settings.speakersPerClient, dimension: dimension, seed: seed,
                                                 pause: settings.opInterval, socketPath: started.socketPath)
                    group.addTask { await client.run(running: running, tally: tally) }
                }
                var ledger = WriteLedger()
                for await part in group { ledger.merge(part) }
                return ledger
            }
        }
        let monitor = Task { await monkey.monitor(running: watching) }
        let signals = Task { await monkey.signalWorkers(startedAt: startedAt, running: running) }
        let bounces = Task { await monkey.bounceServers(startedAt: startedAt, running: running) }
        let progress = Task { await self.showProgress(startedAt: startedAt, running: watching, tally: tally) }

        while ContinuousClock.now < startedAt + settings.duration && interrupts.count == 0 {
            try? await Task.sleep(for: .milliseconds(100))
        }
        running.withLock { $0 = false }
        await signals.value
        await bounces.value
        let ledger = await load.value
        let chaosEnded = ContinuousClock.now
        let chaosSeconds = startedAt.duration(to: chaosEnded).chaosSeconds

        // Settle: every worker ready again, the outbox pushed, the metrics caught up.
        var unsettled: [String] = []
        repeat {
            guard interrupts.count < 2 else { throw ChaosError(.interrupted, "interrupted while settling") }
            unsettled = await probes.unsettled(record: record)
            if unsettled.isEmpty { break }
            try? await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < chaosEnded + settings.settle
        let convergeSeconds = chaosEnded.duration(to: .now).chaosSeconds
        watching.withLock { $0 = false }
        await monitor.value
        await progress.value

        // Audit, then stop voxsyncd and look for anything left behind.
        let audit = try await ChaosAudit.run(
            probes: probes, ledger: ledger, tally: tally.current, record: record.current, schedule: schedule,
            settings: settings, dimension: dimension, unsettled: unsettled)
        let supervisor = started.pid
        let exitCode = await started.stop(timeout: .seconds(30))
        let leftovers = ProcFS.workers(of: supervisor).filter { ProcFS.isAlive($0.pid) }.map(\.pid)

        let report = ChaosReport(
            settings: settings, seed: seed, schedule: schedule, tally: tally.current, record: record.current, audit: audit,
            chaosSeconds: chaosSeconds, convergeSeconds: unsettled.isEmpty ? convergeSeconds : nil, daemonExitCode: exitCode,
            leftovers: leftovers, interrupted: interrupts.count > 0)
        print(report.render())
        return report.passed
    }

    /// Undoes what the run started: resumes stopped workers, starts a server it stopped, stops
    /// voxsyncd, kills any worker of it still alive.
    func cleanUp() async {
        for pid in record.current.stopped where ProcFS.isAlive(pid) { kill(pid, SIGCONT) }
        for server in down.current {
            let command = server == "PostgreSQL" ? settings.postgresCommands?.start : settings.redisCommands?.start
            if let command { _ = try? await runShell(command) }
        }
        guard let daemon = daemon.current else { return }
        if daemon.isRunning { _ = await daemon.stop(timeout: .seconds(30)) }
        for worker in ProcFS.workers(of: daemon.pid) where ProcFS.isAlive(worker.pid) { kill(worker.pid, SIGKILL) }
    }

    /// The live line on standard error, once a second (in place on a terminal, every 5 s
    /// otherwise).
    private func showProgress(startedAt: ContinuousClock.Instant, running: Locked<Bool>, tally: Locked<LoadTally>) async {
        let terminal = isatty(STDERR_FILENO) == 1
        var tick = 0
        while running.current {
            try? await Task.sleep(for: .seconds(1))
            tick += 1
            guard terminal || tick % 5 == 0 else { continue }
            let counts = tally.current
            let chaos = record.current
            let line = "[\(ChaosFormat.decimal(startedAt.duration(to: .now).chaosSeconds, 0)) s] ops \(counts.done) · "
                + "SIGKILL \(chaos.kills) · SIGSTOP \(chaos.stops) · restarts seen \(chaos.restartsSeen) · "
                + "outages \(chaos.outages.count)\(down.current.isEmpty ? "" : " (\(down.current.sorted().joined(separator: ", ")) down)") · "
                + "client errors: \(counts.failureSummary)"
            FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
        }
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
