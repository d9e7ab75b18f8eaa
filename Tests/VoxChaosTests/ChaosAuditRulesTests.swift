import Testing
import VoxChaos

@Suite struct ChaosAuditRulesTests {
    let roles = ["cache", "sync"]

    @Test func restartsMustEqualDistinctVictims() {
        var accounting = RestartAccounting()
        accounting.signalled(role: "cache", pid: 10, landed: true)
        accounting.signalled(role: "cache", pid: 10, landed: true)   // the same process twice: one death
        accounting.signalled(role: "cache", pid: 11, landed: true)
        accounting.signalled(role: "sync", pid: 20, landed: false)   // already gone
        #expect(accounting.expectedRestarts("cache") == 2 && accounting.expectedRestarts("sync") == 0)
        #expect(accounting.missed == 1)
        #expect(accounting.mismatches(roles: roles, status: ["cache": 2, "sync": 0], metrics: ["cache": 2]).isEmpty)
    }

    @Test func aCrashBeyondTheSignalsOrAStaleMetricIsAMismatch() {
        var accounting = RestartAccounting()
        accounting.signalled(role: "cache", pid: 10, landed: true)
        #expect(accounting.mismatches(roles: roles, status: ["cache": 1, "sync": 1], metrics: ["cache": 1, "sync": 1])
            == ["sync: 0 signalled, status says 1 restarts"])
        #expect(accounting.mismatches(roles: roles, status: ["cache": 1], metrics: ["cache": 0])
            == ["cache: 1 signalled, metrics say 0"])
        #expect(accounting.mismatches(roles: ["cache"], status: ["cache": 1], metrics: nil)
            == ["cache: 1 signalled, metrics could not be scraped"])
    }

    @Test func tablesCompareFieldByFieldAndNameTheRow() {
        let local = ["a": 1, "b": 2, "c": 3]
        let remote = ["a": 1, "b": 5, "d": 4]
        let differences = TableComparison.differences(local: local, remote: remote) { "v\($0)" }
        #expect(differences == [
            .init(speakerID: "b", what: "SQLite v2, PostgreSQL v5"),
            .init(speakerID: "c", what: "only in SQLite: v3"),
            .init(speakerID: "d", what: "only in PostgreSQL: v4"),
        ])
        #expect(TableComparison.differences(local: local, remote: local) { "\($0)" }.isEmpty)
    }

    @Test func zombiesAreDeadNotOrphaned() {
        let processes: [OrphanCheck.Process] = [
            .init(pid: 11, parent: 10, state: "S"),
            .init(pid: 12, parent: 1, state: "Z"),   // killed, reparented, never reaped by PID 1
            .init(pid: 13, parent: 1, state: "S"),   // alive under init: an orphan
            .init(pid: 14, parent: 10, state: "T"),  // stopped but still the supervisor's
        ]
        #expect(OrphanCheck.orphans(processes, supervisor: 10, supervisorAlive: true).map(\.pid) == [13])
        // After the supervisor has gone, anything of it still alive is left behind.
        #expect(OrphanCheck.orphans(processes, supervisor: 10, supervisorAlive: false).map(\.pid) == [11, 13, 14])
    }
}
