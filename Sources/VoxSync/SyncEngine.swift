import Foundation
import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import VoxCore
import VoxStore
import VoxWire

/// How the sync worker pushes and pulls.
public struct SyncSettings: Sendable {
    /// Speakers per multi-row upsert. Default 50.
    public var batchSize = 50
    /// Drain and pull interval when nothing nudges. Default 1 s.
    public var interval: Duration = .seconds(1)
    /// Pushes of a refused row before it is dead-lettered. Default 5.
    public var maxRetryAttempts = 5
    public var breaker = CircuitBreaker<ContinuousClock.Instant>.Configuration()
    /// Deadline of one PostgreSQL call. Default 5 s.
    public var remoteTimeout: Duration = .seconds(5)
    /// Remote rows per pull page. Default 1000.
    public var pullPageSize = 1000
    /// Pages applied per pull before the drain gets its turn again. Default 50.
    public var maxPullPages = 50
    /// Batches pushed per cycle before the pull gets its turn again. Default 200.
    public var maxBatchesPerCycle = 200
    /// Delay between pushes of a row PostgreSQL refused.
    public var rowRetryBackoff = ExponentialBackoff(initial: .milliseconds(200), maximum: .seconds(30))
    /// Backoff after a transient failure (also bounded by the breaker).
    public var failureBackoff = ExponentialBackoff(initial: .milliseconds(100), maximum: .seconds(30))

    public init() {}
}

/// The sync worker's logic around its two stores: drains the local outbox to PostgreSQL in
/// coalesced multi-row upserts, pulls what other instances wrote, and keeps the figures that
/// `voxsync sync status` and the metrics show.
///
/// The decisions are the pure `OutboxPlanner`, `CircuitBreaker` and `PullCursor`; this actor
/// carries them out. SQLite runs on a thread of its own (`storeThread`), never on the
/// cooperative pool.
public actor SyncEngine {
    public let settings: SyncSettings
    private let store: StoreBox
    private let storeThread: NIOThreadPool
    let remote: RemoteStore?
    let origin: String
    let rules: ProfileRules
    let logger: Logger
    let onRemoteChanges: @Sendable ([String]) -> Void
    private var planner: OutboxPlanner
    private var breaker: CircuitBreaker<ContinuousClock.Instant>
    var cursor: PullCursor?
    private var transientStreak = 0
    private var schemaReady = false

    /// What a drain achieved.
    public struct DrainReport: Sendable, Equatable {
        /// Profiles whose push committed remotely.
        public var pushed = 0
        /// Upsert statements that committed (one per batch, plus one per row retried alone).
        public var upserts = 0
        /// Profiles refused for good (rescheduled or dead-lettered).
        public var refused = 0
        /// The drain stopped on a transient failure or an open breaker; rows stay queued.
        public var interrupted = false
    }

    // Figures for status and metrics.
    public private(set) var pushedTotal: UInt64 = 0
    public private(set) var upsertsTotal: UInt64 = 0
    public private(set) var failuresTotal: UInt64 = 0
    public internal(set) var pulledTotal: UInt64 = 0
    public private(set) var deadLetteredTotal: UInt64 = 0
    /// Remote rows that broke the profile rules (wrong dimension, bad values) and were skipped.
    public internal(set) var remoteRowsSkipped: UInt64 = 0
    private var lastPush: Int64 = 0
    var lastPull: Int64 = 0
    private var lastError = ""
    private var lastBatchSeconds = 0.0
    /// Upsert latencies, exported as `sync_latency_seconds`.
    private let syncLatency = Timer(label: "sync_latency_seconds")

    public init(
        store: SyncStore, remote: RemoteStore?, settings: SyncSettings, logger: Logger,
        onRemoteChanges: @escaping @Sendable ([String]) -> Void
    ) {
        self.store = StoreBox(store: store)
        self.storeThread = NIOThreadPool(numberOfThreads: 1)
        self.remote = remote
        self.origin = store.configuration.origin
        self.rules = store.rules
        self.settings = settings
        self.logger = logger
        self.onRemoteChanges = onRemoteChanges
        self.planner = OutboxPlanner(batchSize: settings.batchSize, maxAttempts: settings.maxRetryAttempts, retryBackoff: settings.rowRetryBackoff)
        self.breaker = CircuitBreaker(configuration: settings.breaker)
        storeThread.start()
    }

    public func shutdown() async {
        try? await storeThread.shutdownGracefully()
    }

    public var circuitPhase: CircuitBreaker<ContinuousClock.Instant>.Phase { breaker.phase }

    // MARK: One cycle

    /// Drains the outbox, then pulls; returns how long to wait before the next cycle when
    /// nothing nudges: the interval, or the backoff / the breaker's break after a failure.
    public func cycle() async -> Duration {
        guard remote != nil else { return settings.interval }
        let report = await drain(maxBatches: settings.maxBatchesPerCycle)
        if !report.interrupted { await pull() }
        return report.pushed > 0 && !report.interrupted ? .zero : nextDelay()
    }

    private func nextDelay() -> Duration {
        if case .open(let until) = breaker.state {
            return max(.milliseconds(10), ContinuousClock.now.duration(to: until))
        }
        guard transientStreak > 0 else { return settings.interval }
        return settings.failureBackoff.delay(attempt: transientStreak - 1, random: Double.random(in: 0..<1))
    }

    /// Pushes batches until the outbox has no due rows, a transient failure, the breaker
    /// refuses, or `deadline` passes.
    public func drain(until deadline: ContinuousClock.Instant? = nil, maxBatches: Int = .max) async -> DrainReport {
        var report = DrainReport()
        guard remote != nil else { return report }
        // While the breaker waits out its break, a nudge costs nothing: no SQLite, no call.
        if case .open(let until) = breaker.state, ContinuousClock.now < until {
            report.interrupted = true
            return report
        }
        var batches = 0
        while deadline.map({ ContinuousClock.now < $0 }) ?? true, batches < maxBatches {
            batches += 1
            guard let more = await pushBatch(into: &report) else {
                report.interrupted = true
                break
            }
            if !more { break }
        }
        return report
    }

    /// One batch. Returns whether more may be due, or nil when the drain must stop.
    private func pushBatch(into report: inout DrainReport) async -> Bool? {
        guard let remote, await ensureSchema() else { return nil }
        let now = Self.wallMilliseconds()
        let planner = self.planner
        let batchSize = settings.batchSize
        let snapshot: (items: [OutboxItem], orphans: [(speakerID: String, upTo: Int64)], corrupt: [SyncStore.CorruptRow])
        do {
            snapshot = try await onStore { store in
                let rows = try store.dueOutbox(now: now, limit: batchSize * 4)
                let speakers = planner.nextBatch(rows)
                guard !speakers.isEmpty else { return ([], [], []) }
                let snapshot = try store.snapshot(speakers)
                try store.complete(snapshot.orphans)
                // A row that cannot be read back can never be pushed: out of the way, so the
                // rest of its batch goes on (`voxsync sync dead-letters` shows it).
                for row in snapshot.corrupt { try store.deadLetter(row, now: now) }
                return snapshot
            }
        } catch {
            return localFailure(error)
        }
        for row in snapshot.corrupt {
            deadLetteredTotal += 1
            logger.error("a local profile row cannot be read back; moved to dead letters (voxsync sync dead-letters)", metadata: [
                "speaker": "\(row.speakerID)", "error": "\(row.error)",
            ])
        }
        guard !snapshot.items.isEmpty else { return snapshot.orphans.isEmpty && snapshot.corrupt.isEmpty ? false : true }

        guard acquire() else { return nil }
        let started = ContinuousClock.now
        do {
            try await remote.upsert(snapshot.items.map(\.record), dimension: rules.dimension, model: rules.model, timeout: settings.remoteTimeout)
        } catch {
            switch SyncFailureKind.classify(sqlState: error.sqlState) {
            case .transient:
                transientFailure(error)
                return nil
            case .rejected:
                // The server answered, so it is up; find the refused rows one by one.
                succeeded()
                logger.notice("a batch was refused; retrying its rows one by one", metadata: ["rows": "\(snapshot.items.count)", "error": "\(error.syncDescription)"])
                return await pushOneByOne(snapshot.items, into: &report)
            }
        }
        let elapsed = started.duration(to: ContinuousClock.now)
        succeeded()
        do {
            try await onStore { store in try store.complete(snapshot.items.map { ($0.record.speakerID, $0.upTo) }) }
        } catch {
            // Pushed but not marked done: the rows go again, and the upsert's version rule
            // makes the repeat harmless.
            return localFailure(error)
        }
        record(pushed: snapshot.items.count, upserts: 1, elapsed: elapsed, into: &report)
        return true
    }

    private func pushOneByOne(_ items: [OutboxItem], into report: inout DrainReport) async -> Bool? {
        guard let remote else { return nil }
        for item in items {
            guard acquire() else { return nil }
            let started = ContinuousClock.now
            do {
                try await remote.upsert([item.record], dimension: rules.dimension, model: rules.model, timeout: settings.remoteTimeout)
                succeeded()
                try await onStore { store in try store.complete([(item.record.speakerID, item.upTo)]) }
                record(pushed: 1, upserts: 1, elapsed: started.duration(to: ContinuousClock.now), into: &report)
            } catch where error is StoreError {
                return localFailure(error)
            } catch {
                guard SyncFailureKind.classify(sqlState: error.sqlState) == .rejected else {
                    transientFailure(error)
                    return nil
                }
                succeeded()
                failuresTotal += 1
                report.refused += 1
                let message = error.syncDescription
                lastError = "\(item.record.speakerID): \(message)"
                let now = Self.wallMilliseconds()
                let outcome = planner.afterRejection(previousAttempts: item.attempts, random: Double.random(in: 0..<1))
                do {
                    switch outcome {
                    case .retry(let attempts, let delay):
                        let next = now + Int64(delay.seconds * 1000)
                        try await onStore { store in try store.reschedule(item, attempts: attempts, nextAttemptAt: next, error: message) }
                        logger.warning("PostgreSQL refused a profile; will retry", metadata: [
                            "speaker": "\(item.record.speakerID)", "attempt": "\(attempts)", "error": "\(message)",
                        ])
                    case .deadLetter(let attempts):
                        try await onStore { store in try store.deadLetter(item, attempts: attempts, error: message, now: now) }
                        deadLetteredTotal += 1
                        logger.error("PostgreSQL refused a profile too often; moved to dead letters (voxsync sync dead-letters)", metadata: [
                            "speaker": "\(item.record.speakerID)", "attempts": "\(attempts)", "error": "\(message)",
                        ])
                    }
                } catch {
                    return localFailure(error)
                }
            }
        }
        return true
    }

    private func record(pushed: Int, upserts: Int, elapsed: Duration, into report: inout DrainReport) {
        report.pushed += pushed
        report.upserts += upserts
        pushedTotal += UInt64(pushed)
        upsertsTotal += UInt64(upserts)
        lastPush = Self.wallMilliseconds()
        lastBatchSeconds = elapsed.seconds
        syncLatency.recordNanoseconds(Int64(elapsed.seconds * 1e9))
    }

    // MARK: Dead letters and status

    public func deadLetters(limit: Int) async throws -> (letters: [DeadLetterRecord], total: Int) {
        try await onStore { store in try store.deadLetters(limit: limit) }
    }

    public func retryDeadLetters(id: Int64?) async throws -> Int {
        let now = Self.wallMilliseconds()
        return try await onStore { store in try store.retryDeadLetters(id: id, now: now) }
    }

    public func status() async -> Voxsync_V1_SyncStatusResponse {
        var answer = Voxsync_V1_SyncStatusResponse()
        answer.remoteConfigured = remote != nil
        answer.remote = remote?.url.description ?? ""
        answer.circuitState = breaker.phase.description
        answer.circuitOpenings = UInt32(clamping: breaker.openings)
        answer.poolSize = UInt32(remote?.poolSize ?? 0)
        answer.poolLoad = remote?.load ?? 0
        answer.pushedTotal = pushedTotal
        answer.batchesTotal = upsertsTotal
        answer.failuresTotal = failuresTotal
        answer.pulledTotal = pulledTotal
        answer.lastPushUnixMs = lastPush
        answer.lastPullUnixMs = lastPull
        answer.lastError = lastError
        answer.lastBatchSeconds = lastBatchSeconds
        if let summary = try? await onStore({ store in (try store.outboxSummary(), try store.deadLetters(limit: 0).total) }) {
            answer.queueSize = UInt64(summary.0.count)
            answer.oldestQueuedAgeSeconds = summary.0.oldestEnqueuedAt.map { max(0, Double(Self.wallMilliseconds() - $0) / 1000) } ?? 0
            answer.deadLetters = UInt64(summary.1)
        }
        return answer
    }

    // MARK: Breaker and failures

    func ensureSchema() async -> Bool {
        guard !schemaReady, let remote else { return remote != nil }
        guard acquire() else { return false }
        do {
            try await remote.migrate(timeout: settings.remoteTimeout)
            succeeded()
            schemaReady = true
            logger.info("PostgreSQL schema ready", metadata: ["remote": "\(remote.url)"])
            return true
        } catch {
            transientFailure(error)
            return false
        }
    }

    func acquire() -> Bool {
        let (permission, transition) = breaker.acquire(now: .now)
        if let transition { log(transition) }
        return permission == .allowed
    }

    func succeeded() {
        transientStreak = 0
        if let transition = breaker.recordSuccess(now: .now) { log(transition) }
    }

    func transientFailure(_ error: Error) {
        failuresTotal += 1
        transientStreak += 1
        let description = error.syncDescription
        if description != lastError || transientStreak == 1 {
            logger.warning("PostgreSQL unavailable; changes stay queued locally", metadata: ["error": "\(description)"])
        }
        lastError = description
        if let transition = breaker.recordFailure(now: .now) { log(transition) }
    }

    /// The local store failed (disk full, I/O error): nothing to do but log and try later.
    func localFailure(_ error: Error) -> Bool? {
        failuresTotal += 1
        transientStreak += 1
        lastError = "local store: \(error)"
        logger.error("local store failed during sync", metadata: ["error": "\(error)"])
        return nil
    }

    private func log(_ transition: CircuitBreaker<ContinuousClock.Instant>.Transition) {
        switch transition.to {
        case .open: logger.error("\(transition)", metadata: ["error": "\(lastError)"])
        case .halfOpen: logger.notice("\(transition)")
        case .closed: logger.notice("\(transition)")
        }
    }

    func onStore<T: Sendable>(_ body: @escaping @Sendable (SyncStore) throws -> T) async throws -> T {
        let store = self.store
        return try await storeThread.runIfActive { try body(store.store) }
    }

    static func wallMilliseconds() -> Int64 {
        WallClock.nowMilliseconds()
    }
}

/// The store crosses to its thread inside this box; only `storeThread`'s one thread uses it.
private struct StoreBox: @unchecked Sendable {
    let store: SyncStore
}
