import Foundation
import VoxChaos
import VoxCore
import VoxStore
import VoxTransport

/// The checks after a chaos run, each passed or not with what it found.
struct ChaosAudit: Sendable {
    struct Check: Sendable {
        var name: String
        var passed: Bool
        var detail: String
    }

    var checks: [Check] = []
    var restarts: [String: (expected: Int, status: Int, metrics: Int?)] = [:]
    /// What the sync worker went through, in one sentence (nil without PostgreSQL).
    var syncSummary: String?

    mutating func add(_ name: String, _ passed: Bool, _ detail: String) {
        checks.append(Check(name: name, passed: passed, detail: detail))
    }

    static func run(
        probes: ChaosProbes, ledger: WriteLedger, tally: LoadTally, record: ChaosRecord, schedule: ChaosSchedule,
        settings: ChaosRun.Settings, dimension: Int, unsettled: [String]
    ) async throws -> ChaosAudit {
        var audit = ChaosAudit()
        audit.add("settled", unsettled.isEmpty,
                  unsettled.isEmpty ? "every worker ready, outbox pushed, metrics caught up" : "not within \(Int(settings.settle.chaosSeconds)) s: " + unsettled.joined(separator: "; "))

        // What the clients were acknowledged, against the store's file.
        let local = try probes.localRows(dimension: dimension)
        let localByID = Dictionary(uniqueKeysWithValues: local.map { ($0.speakerID, $0) })
        let verdicts = LedgerAudit.run(ledger, rows: localByID.mapValues(ObservedRow.init), dimension: dimension)
        audit.add("acknowledged writes in SQLite", verdicts.lost.isEmpty,
                  "\(verdicts.acknowledgedWrites) acknowledged writes to \(verdicts.speakersChecked) speakers: \(verdicts.intact) as acknowledged, "
                  + "\(verdicts.uncertainLanded) replaced by a newer unanswered write, \(verdicts.lost.count) lost"
                  + verdicts.lost.prefix(3).map { "; \($0.speaker): \($0.why)" }.joined())

        // The cache worker answers what the file holds.
        let served = try await probes.servedVersions(ledger.speakers.keys.sorted())
        let cacheDifferences = served.compactMap { speaker, version -> String? in
            let row = localByID[speaker]
            let expected: UInt64? = (row == nil || row!.deleted) ? nil : row!.version
            return version == expected ? nil : "\(speaker): served \(version.map { "v\($0)" } ?? "not found"), file \(expected.map { "v\($0)" } ?? "none")"
        }.sorted()
        audit.add("gets over the socket = SQLite", cacheDifferences.isEmpty,
                  "\(served.count) speakers read back, \(cacheDifferences.count) differ" + cacheDifferences.prefix(3).map { "; \($0)" }.joined())

        // PostgreSQL holds exactly the file's rows.
        if let remote = try await probes.remoteRows() {
            let remoteByID = Dictionary(uniqueKeysWithValues: remote.map { ($0.speakerID, $0) })
            let differences = TableComparison.differences(local: localByID, remote: remoteByID) { row in
                "v\(row.version)\(row.deleted ? " tombstone" : "") '\(row.metadata)'"
            }
            let tombstones = local.filter(\.deleted).count
            if let sync = try? await probes.syncStatus() {
                audit.syncSummary = "Sync worker (its current process): \(sync.pushedTotal) profiles pushed in \(sync.batchesTotal) upserts, "
                    + "\(sync.failuresTotal) failed PostgreSQL calls, circuit opened \(sync.circuitOpenings) times, \(sync.deadLetters) dead letters."
            }
            audit.add("PostgreSQL = SQLite", differences.isEmpty,
                      "\(local.count) rows in SQLite (\(tombstones) tombstones), \(remote.count) in PostgreSQL, \(differences.count) differ"
                      + differences.prefix(3).map { "; \($0.speakerID): \($0.what)" }.joined())
        } else {
            audit.add("PostgreSQL = SQLite", true, "not checked: no --postgres-url")
        }

        // Workers: all back, none orphaned, restarts as signalled.
        let status = try await probes.status()
        let down = status.workers.filter { $0.state != "ready" }.map { "\($0.role.serviceRole?.rawValue ?? "?") \($0.state)" }
        audit.add("every worker ready", down.isEmpty && status.workers.count == ServiceRole.allCases.count,
                  down.isEmpty ? "\(status.workers.count) of \(ServiceRole.allCases.count) ready" : "not ready: " + down.joined(separator: ", "))
        let processes = ProcFS.workers(of: status.supervisorPid).map { OrphanCheck.Process(pid: $0.pid, parent: $0.parent, state: $0.state) }
        let orphans = OrphanCheck.orphans(processes, supervisor: status.supervisorPid, supervisorAlive: true)
        let zombies = processes.filter { $0.state == "Z" }.count
        audit.add("no orphaned worker", orphans.isEmpty,
                  "\(processes.count - zombies) live worker processes of supervisor \(status.supervisorPid)"
                  + (zombies > 0 ? ", \(zombies) zombies (dead, unreaped by PID 1)" : "")
                  + orphans.map { "; pid \($0.pid) has parent \($0.parent)" }.joined())

        let statusRestarts = Dictionary(uniqueKeysWithValues: status.workers.map { ($0.role.serviceRole?.rawValue ?? "?", Int($0.restarts)) })
        let scraped = await probes.scrapedRestarts()
        let roles = ServiceRole.startOrder.map(\.rawValue)
        for role in roles {
            audit.restarts[role] = (record.accounting.expectedRestarts(role), statusRestarts[role] ?? 0, scraped.map { $0[role] ?? 0 })
        }
        let mismatches = record.accounting.mismatches(roles: roles, status: statusRestarts, metrics: scraped)
        audit.add("restart counts = signals", mismatches.isEmpty,
                  "rule: restarts == distinct pids signalled (a SIGKILL, or a SIGSTOP the heartbeat turns into one)"
                  + (record.accounting.missed > 0 ? "; \(record.accounting.missed) signals found their process gone and are not counted" : "")
                  + mismatches.map { "; \($0)" }.joined())

        // Clients.
        audit.add("idempotent requests answered", tally.idempotentFailures == 0,
                  "\(tally.idempotentFailures) gets, verifies, identifies or deletes failed after VoxClient's retries")
        // Every read of a client's own speaker, judged against its ledger as it was answered.
        let examples = tally.answerViolations.keys.sorted().flatMap { kind in (tally.violationExamples[kind] ?? []).prefix(1).map { "; \(kind.rawValue): \($0)" } }
        audit.add("answers as acknowledged", tally.violations == 0,
                  "\(tally.answerChecks.values.reduce(0, +)) rule checks of gets, verifies and identifies of own speakers, \(tally.violations) violations"
                  + (tally.violations == 0 ? "" : " (" + tally.answerViolations.sorted { $0.key < $1.key }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ") + ")")
                  + examples.prefix(3).joined())

        // The chaos itself happened as asked.
        let failedOutages = record.outages.filter { $0.stopCode != 0 || $0.startCode != 0 }
        let plannedOutages = schedule.postgresOutages.count + schedule.redisOutages.count
        if plannedOutages > 0 {
            audit.add("outages carried out", failedOutages.isEmpty && record.outages.count == plannedOutages,
                      "\(record.outages.count) of \(plannedOutages)"
                      + failedOutages.map { "; \($0.server): stop exited \($0.stopCode), start exited \($0.startCode.map(String.init) ?? "-")" }.joined())
        }
        if settings.requireKills > 0 {
            let short = settings.roles.filter { (record.signals[$0]?[.kill] ?? 0) < settings.requireKills }
            audit.add("every worker SIGKILLed ≥ \(settings.requireKills)×", short.isEmpty,
                      short.isEmpty ? "yes" : "too few for " + short.map { "\($0) (\(record.signals[$0]?[.kill] ?? 0))" }.joined(separator: ", "))
        }
        return audit
    }
}
