import Testing
import VoxCore

/// The circuit breaker, driven by made-up instants: no server, no sleeping.
@Suite struct CircuitBreakerTests {
    typealias Breaker = CircuitBreaker<ContinuousClock.Instant>
    let t0 = ContinuousClock.now

    func at(_ offset: Duration) -> ContinuousClock.Instant { t0 + offset }

    func breaker(threshold: Int = 3, probes: Int = 1) -> Breaker {
        Breaker(configuration: .init(failureThreshold: threshold, initialBreak: .seconds(1), maximumBreak: .seconds(8), halfOpenProbes: probes))
    }

    @Test func opensAfterConsecutiveFailuresEvenAtLowTraffic() {
        var breaker = breaker()
        // One call a minute: a rate-based breaker would never see enough volume to open.
        for minute in 0..<2 {
            #expect(breaker.acquire(now: at(.seconds(60 * minute))).0 == .allowed)
            #expect(breaker.recordFailure(now: at(.seconds(60 * minute))) == nil)
        }
        #expect(breaker.acquire(now: at(.seconds(120))).0 == .allowed)
        let transition = breaker.recordFailure(now: at(.seconds(120)))
        #expect(transition == .init(from: .closed, to: .open, breakDuration: .seconds(1)))
        #expect(breaker.phase == .open)
        #expect(breaker.acquire(now: at(.milliseconds(120_500))).0 == .refused(retryAt: at(.seconds(121))))
    }

    @Test func aSuccessInBetweenResetsTheCount() {
        var breaker = breaker()
        _ = breaker.recordFailure(now: at(.zero))
        _ = breaker.recordFailure(now: at(.zero))
        _ = breaker.recordSuccess(now: at(.zero))
        _ = breaker.recordFailure(now: at(.zero))
        _ = breaker.recordFailure(now: at(.zero))
        #expect(breaker.phase == .closed)
        #expect(breaker.state == .closed(consecutiveFailures: 2))
    }

    @Test func halfOpenLetsLimitedProbesThroughAndASuccessCloses() {
        var breaker = breaker(threshold: 1, probes: 2)
        _ = breaker.recordFailure(now: at(.zero))
        let (permission, transition) = breaker.acquire(now: at(.seconds(1)))
        #expect(permission == .allowed)
        #expect(transition == .init(from: .open, to: .halfOpen))
        #expect(breaker.acquire(now: at(.seconds(1))).0 == .allowed, "a second probe")
        #expect(breaker.acquire(now: at(.seconds(1))).0 == .refused(retryAt: nil), "no third while two are in flight")
        #expect(breaker.recordSuccess(now: at(.seconds(1))) == .init(from: .halfOpen, to: .closed))
        #expect(breaker.phase == .closed)
        #expect(breaker.nextBreak == .seconds(1))
    }

    @Test func theBreakGrowsWhileFailuresContinueAndShrinksAfterRecovery() {
        var breaker = breaker(threshold: 1)
        var now = at(.zero)
        var breaks: [Duration] = []
        for _ in 0..<6 {
            if case .open(let until) = breaker.state {
                #expect(breaker.acquire(now: until).0 == .allowed)
                now = until
            }
            breaks.append(breaker.recordFailure(now: now)!.breakDuration!)
        }
        #expect(breaks == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(8), .seconds(8)])
        #expect(breaker.openings == 6)
        guard case .open(let until) = breaker.state else { Issue.record("not open"); return }
        _ = breaker.acquire(now: until)
        _ = breaker.recordSuccess(now: until)
        #expect(breaker.nextBreak == .seconds(1))
    }

    @Test func aLateOutcomeWhileOpenChangesNothing() {
        var breaker = breaker(threshold: 1)
        _ = breaker.recordFailure(now: at(.zero))
        #expect(breaker.recordSuccess(now: at(.milliseconds(10))) == nil)
        #expect(breaker.recordFailure(now: at(.milliseconds(10))) == nil)
        #expect(breaker.phase == .open)
        #expect(Breaker.Phase.halfOpen.rawValue == 2, "the original system's encoding")
    }
}

@Suite struct OutboxPlannerTests {
    typealias Row = OutboxPlanner.Row

    @Test func coalescesPerSpeakerInOrderOfTheOldestRow() {
        let planner = OutboxPlanner(batchSize: 2)
        let rows = [Row(id: 1, speakerID: "b"), Row(id: 2, speakerID: "a", attempts: 1), Row(id: 3, speakerID: "b", attempts: 2),
                    Row(id: 4, speakerID: "c"), Row(id: 5, speakerID: "a", attempts: 3)]
        let batch = planner.nextBatch(rows)
        #expect(batch.map(\.speakerID) == ["b", "a"], "c waits for the next batch")
        #expect(batch.map(\.attempts) == [2, 3], "a speaker's most tried row counts")
    }

    @Test func hundredUpdatesOfOneSpeakerAreOneEntry() {
        let rows = (1...100).map { Row(id: Int64($0), speakerID: "alice") }
        #expect(OutboxPlanner().nextBatch(rows).map(\.speakerID) == ["alice"])
    }

    @Test func aRefusedRowIsRetriedWithGrowingDelaysThenDeadLettered() {
        let planner = OutboxPlanner(maxAttempts: 3, retryBackoff: .init(initial: .milliseconds(100), maximum: .seconds(1), jitter: 0))
        #expect(planner.afterRejection(previousAttempts: 0, random: 0.5) == .retry(attempts: 1, delay: .milliseconds(100)))
        #expect(planner.afterRejection(previousAttempts: 1, random: 0.5) == .retry(attempts: 2, delay: .milliseconds(200)))
        #expect(planner.afterRejection(previousAttempts: 2, random: 0.5) == .deadLetter(attempts: 3))
    }

    @Test func onlyDataErrorsAreRejectionsOfTheRow() {
        #expect(SyncFailureKind.classify(sqlState: "23514") == .rejected, "check_violation")
        #expect(SyncFailureKind.classify(sqlState: "22003") == .rejected, "numeric_value_out_of_range")
        #expect(SyncFailureKind.classify(sqlState: "57P01") == .transient, "admin_shutdown")
        #expect(SyncFailureKind.classify(sqlState: "08006") == .transient, "connection_failure")
        #expect(SyncFailureKind.classify(sqlState: "42P01") == .transient, "undefined_table: a deployment problem, not the row's")
        #expect(SyncFailureKind.classify(sqlState: "40P01") == .transient, "deadlock")
        #expect(SyncFailureKind.classify(sqlState: nil) == .transient, "no SQLSTATE: the connection")
        #expect(SyncFailureKind.classify(sqlState: "2") == .transient, "malformed")
    }
}

@Suite struct PullCursorTests {
    @Test func readsTheWindowBelowTheHorizonThenMovesOn() {
        var cursor = PullCursor()
        #expect(cursor.nextPage(observedHorizon: 100) == .init(from: 0, below: 100, after: nil))
        cursor.pageApplied(last: (90, "x"), full: false)
        #expect(cursor.complete == 100)
        #expect(cursor.nextPage(observedHorizon: 100) == nil, "nothing can have ended below 100 since")
        #expect(cursor.nextPage(observedHorizon: 130) == .init(from: 100, below: 130, after: nil))
    }

    @Test func aWriterStillRunningHoldsTheHorizonSoItsRowIsNotSkipped() {
        // Writer A (transaction 10) is still running; writer B (11) has committed. The server's
        // horizon stays at 10 until A ends, so B's row is not read yet and the cursor cannot
        // move past A's.
        var cursor = PullCursor(complete: 10)
        #expect(cursor.nextPage(observedHorizon: 10) == nil)
        // A commits: the horizon jumps past both, and one window holds both rows.
        #expect(cursor.nextPage(observedHorizon: 12) == .init(from: 10, below: 12, after: nil))
    }

    @Test func aServerWhoseTransactionIdsWentBackIsReadAgainFromTheStart() {
        var cursor = PullCursor(complete: 9_000)
        #expect(cursor.nextPage(observedHorizon: 9_000) == nil)
        // Restored onto a new cluster: its ids start low again.
        #expect(cursor.nextPage(observedHorizon: 120) == .init(from: 0, below: 120, after: nil))
    }

    @Test func pagesThroughALargeWindowAndResumesInsideIt() {
        var cursor = PullCursor()
        _ = cursor.nextPage(observedHorizon: 50)
        cursor.pageApplied(last: (7, "m"), full: true)
        // The worker restarts with the persisted cursor and a newer server horizon.
        var resumed = PullCursor(complete: cursor.complete, horizon: cursor.horizon, after: cursor.after)
        #expect(resumed.nextPage(observedHorizon: 80) == .init(from: 0, below: 50, after: (7, "m")), "the open window is finished first")
        resumed.pageApplied(last: (9, "a"), full: false)
        #expect(resumed.complete == 50 && resumed.horizon == nil)
    }
}

@Suite struct PostgresURLTests {
    @Test func parsesTCPWithTLSAndHidesThePassword() throws {
        let url = try PostgresURL(parsing: "postgres://vox:s3cret@db.example.com:6543/voice?sslmode=require")
        #expect(url.endpoint == .tcp(host: "db.example.com", port: 6543))
        #expect(url.user == "vox" && url.password == "s3cret" && url.database == "voice" && url.tls == .require)
        #expect(!url.description.contains("s3cret"))
    }

    @Test func parsesAUnixSocketDirectory() throws {
        let url = try PostgresURL(parsing: "postgresql://postgres@/voxsync?host=/tmp/pg&port=5433")
        #expect(url.endpoint == .unixSocket(path: "/tmp/pg/.s.PGSQL.5433"))
        #expect(url.tls == .prefer && url.password == nil)
    }

    @Test func refusesWhatItCannotUseWithAClearMessage() {
        for (text, fragment) in [
            ("mysql://u@h/db", "must start with postgres://"),
            ("postgres://h/db", "names no user"),
            ("postgres://u@h/", "names no database"),
            ("postgres://u@h/db?sslmode=maybe", "sslmode=maybe"),
            ("postgres://u@h/db?connect_timeout=3", "connect_timeout"),
            ("postgres://u:pw@/db", "names no server"),
        ] {
            #expect(throws: ConfigurationError.self) { try PostgresURL(parsing: text) }
            do { _ = try PostgresURL(parsing: text) } catch { #expect(error.message.contains(fragment), "\(text): \(error.message)") }
        }
    }
}
