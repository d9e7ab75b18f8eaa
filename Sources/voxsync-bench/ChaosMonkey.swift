import Foundation
import VoxChaos
import VoxClient
import VoxCore
import VoxTransport
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// What the chaos task did and saw, shared with the progress line and the report.
struct ChaosRecord: Sendable {
    struct Recovery: Sendable {
        var role: String
        var pid: Int32
        var kind: ChaosSchedule.Kind
        var at: UInt64
    }

    struct Outage: Sendable {
        var server: String
        var stopCode: Int32
        var startCode: Int32?
        var downSeconds: Double
    }

    var accounting = RestartAccounting()
    var signals: [String: [ChaosSchedule.Kind: Int]] = [:]
    /// Events that found their worker not ready until the run ended.
    var skipped = 0
    /// Victims not yet replaced by a ready worker.
    var pending: [Recovery] = []
    /// Signal → replacement ready, in nanoseconds, per role and kind.
    var latencies: [String: [ChaosSchedule.Kind: LatencySamples]] = [:]
    /// Pids the chaos task SIGSTOPped (never signalled again; the heartbeat kills them).
    var stopped: Set<Int32> = []
    var restartsSeen = 0
    var outages: [Outage] = []
    var latestStatus: StatusResponse?

    var kills: Int { signals.values.reduce(0) { $0 + ($1[.kill] ?? 0) } }
    var stops: Int { signals.values.reduce(0) { $0 + ($1[.stop] ?? 0) } }
}

/// Carries out a `ChaosSchedule` against a running voxsyncd: signals workers through the pids
/// the supervisor reports, watches them come back, and stops and starts PostgreSQL and Redis
/// with the commands it was given.
struct ChaosMonkey: Sendable {
    let daemon: ChaosDaemon
    let schedule: ChaosSchedule
    let postgresCommands: (stop: String, start: String)?
    let redisCommands: (stop: String, start: String)?
    let record: Locked<ChaosRecord>
    /// Servers stopped and not yet started again (so an interrupted run can start them).
    let down: Locked<Set<String>>

    static func status(_ client: VoxClient) async throws -> StatusResponse {
        guard case .statusOk(let status) = try await client.send(.status(.init()), timeout: .seconds(5)) else {
            throw BenchError("the supervisor did not answer status")
        }
        return status
    }

    /// Polls the supervisor every 10 ms while `running`: notes when each victim's replacement is
    /// ready, and the restarts seen.
    func monitor(running: Locked<Bool>) async {
        let control = controlClient()
        defer { control.close() }
        while running.current {
            if let status = try? await Self.status(control) {
                let now = monotonicNanoseconds()
                record.withLock { record in
                    record.latestStatus = status
                    record.restartsSeen = status.workers.reduce(0) { $0 + Int($1.restarts) }
                    record.pending.removeAll { recovery in
                        guard let worker = status.workers.first(where: { $0.role.serviceRole?.rawValue == recovery.role }),
                              worker.state == "ready", worker.pid != 0, worker.pid != recovery.pid else { return false }
                        record.latencies[recovery.role, default: [:]][recovery.kind, default: LatencySamples(capacity: 64)]
                            .record(now - recovery.at)
                        record.stopped.remove(recovery.pid)
                        return true
                    }
                }
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Signals workers as scheduled until the schedule ends or `running` turns false.
    func signalWorkers(startedAt: ContinuousClock.Instant, running: Locked<Bool>) async {
        let control = controlClient()
        defer { control.close() }
        for event in schedule.events {
            guard await sleep(until: startedAt + event.at, running: running) else { return }
            // Wait for the victim to be ready (it may still be recovering from the last hit).
            var victim: Int32?
            while running.current, victim == nil {
                if let status = try? await Self.status(control),
                   let worker = status.workers.first(where: { $0.role.serviceRole?.rawValue == event.role }),
                   worker.state == "ready", worker.pid > 0, !record.withLock({ $0.stopped.contains(worker.pid) }) {
                    victim = worker.pid
                } else {
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            guard let pid = victim else {
                record.withLock { $0.skipped += 1 }
                return
            }
            let landed = ProcFS.isAlive(pid) && kill(pid, event.kind == .kill ? SIGKILL : SIGSTOP) == 0
            let at = monotonicNanoseconds()
            record.withLock { record in
                record.accounting.signalled(role: event.role, pid: pid, landed: landed)
                guard landed else { return }
                record.signals[event.role, default: [:]][event.kind, default: 0] += 1
                record.pending.append(.init(role: event.role, pid: pid, kind: event.kind, at: at))
                if event.kind == .stop { record.stopped.insert(pid) }
            }
        }
    }

    /// Stops and starts PostgreSQL and Redis as scheduled. An outage under way when `running`
    /// turns false is ended early: the server is always started again.
    func bounceServers(startedAt: ContinuousClock.Instant, running: Locked<Bool>) async {
        var plan: [(server: String, outage: ChaosSchedule.Outage, commands: (stop: String, start: String))] = []
        if let postgresCommands { plan += schedule.postgresOutages.map { ("PostgreSQL", $0, postgresCommands) } }
        if let redisCommands { plan += schedule.redisOutages.map { ("Redis", $0, redisCommands) } }
        plan.sort { $0.outage.at < $1.outage.at }
        for (server, outage, commands) in plan {
            guard await sleep(until: startedAt + outage.at, running: running) else { return }
            let stoppedAt = ContinuousClock.now
            down.withLock { _ = $0.insert(server) }
            let stopCode = (try? await runShell(commands.stop)) ?? 127
            _ = await sleep(until: stoppedAt + outage.downFor, running: running)
            let startCode = (try? await runShell(commands.start)) ?? 127
            if startCode == 0 { down.withLock { _ = $0.remove(server) } }
            record.withLock {
                $0.outages.append(.init(server: server, stopCode: stopCode, startCode: startCode,
                                        downSeconds: stoppedAt.duration(to: .now).chaosSeconds))
            }
        }
    }

    /// Sleeps until `instant`; false when `running` turned false first.
    private func sleep(until instant: ContinuousClock.Instant, running: Locked<Bool>) async -> Bool {
        while running.current {
            let left = ContinuousClock.now.duration(to: instant)
            if left <= .zero { return true }
            try? await Task.sleep(for: min(left, .milliseconds(50)))
        }
        return false
    }

    private func controlClient() -> VoxClient {
        var configuration = VoxClientConfiguration(socketPath: daemon.controlPath)
        configuration.clientName = "voxsync-bench-chaos-monkey"
        return VoxClient(configuration: configuration)
    }
}
