import CoreMetrics
import CVoxSys
import Foundation
import Logging
import NIOCore
import NIOPosix
import VoxCore
import VoxStore
import VoxTransport
import VoxWire

/// The cache worker's service: profile operations over the client socket, answered from
/// memory when it can and from local SQLite when it must.
///
/// State (the embedding matrix of every live profile, the bounded profile cache and its SIEVE
/// policy, the counters) is guarded by `lock`; the group-commit queue by a lock of its own
/// (`queued`). A request is answered
/// on the event loop of its connection — the worker runs `event_loop_threads` loops (default
/// 2), so socket I/O, framing and protobuf of different connections run in parallel — and
/// holds the lock only while it reads or changes the state: about a microsecond for a verify.
/// Nothing that blocks or calls back into the service runs under it: promises are completed
/// after it is released (a completed promise may run the connection's next request at once,
/// which takes the lock again); a commit's answers are handed to their loops under it, which
/// only queues a task on each. The home loop `loop` runs the timers and the peers' messages,
/// and completes the futures of the store's other work (a miss, a delete, a list, stats),
/// whose answers then go on to their connections' loops.
///
/// SQLite runs on one thread of its own, so a write waiting for its commit never holds up a
/// verify. That thread also applies what the store did to the state (a commit's new versions,
/// a miss's read, a delete, a refresh), under the lock, right after doing it: so the state
/// takes the store's results in the order the store produced them — a read that finished
/// before a commit can never put back what the commit replaced — and a commit's answers go
/// from there straight to the connections' loops, with no hop through `loop`. Writes that
/// arrive while a commit runs share the next transaction (group commit): one fsync
/// acknowledges all of them.
///
/// Each embedding is held once, in the matrix; a cache entry holds the rest of its profile
/// (samples, threshold, metadata, version). Identify takes the lock only to take a snapshot of
/// the matrix and scans it on a thread of its own without the lock (100 000 × 192 take 4–5 ms
/// here, see the README's benchmarks), so neither a verify nor a write, on either loop, waits
/// for a scan; a write during a scan copies the block of the matrix it changes, once per scan
/// (`EmbeddingMatrix.Snapshot`).
///
/// Access times: the speakers served are noted in memory (`AccessLog`) and written to the
/// store's `last_access` every `accessFlushInterval` in one transaction, so that a restart
/// preloads the most recently used profiles first.
///
/// `@unchecked Sendable`: the mutable members are touched only while holding `lock` (the
/// group-commit queue `commits` while holding a lock of its own), and `store` only on the
/// single thread of `storeThread`.
public final class CacheService: ServerResponder, @unchecked Sendable {
    public let loop: EventLoop
    /// Guards every mutable member below but `commits` (see the type's documentation).
    private let lock = AdaptiveLock()
    /// The one thread that uses `store` (see `onStore`).
    let storeThread: NIOThreadPool
    /// Identify's scans, one at a time, off the event loops (a scan of 100 000 × 192 is 4–5 ms
    /// that the other connections of its loop would wait) and off the store's thread.
    private let scanThread: NIOThreadPool
    /// Used only on `storeThread`, through `onStore`.
    let store: ProfileStore
    let rules: ProfileRules
    let defaultThreshold: Float
    var matrix: EmbeddingMatrix
    var cache: [String: CachedProfile] = [:]
    var policy: SieveCachePolicy<String>
    /// Guarded by `commitLock`, not by `lock` (see `queued`).
    var commits = GroupCommitQueue<PendingPut>(maxBatch: 1024)
    /// Guards `commits` alone, so that a write queues without waiting for the cache.
    let commitLock = AdaptiveLock()
    var hits: UInt64 = 0
    var misses: UInt64 = 0
    /// Entries loaded by the prefetch worker's lists and what became of them.
    var prefetched = PrefetchLedger<String>()
    let metrics = CacheMetrics()
    var precisionGauge: Gauge?
    /// Called after writes committed (the sync worker's nudge), on the store's thread; it must
    /// not block. Set before serving.
    public var onCommitted: (@Sendable () -> Void)?
    /// Called by identify between taking its snapshot and scanning it, on the scan thread;
    /// tests hold a scan here to show what runs beside it.
    var identifyWillScan: (@Sendable () -> Void)?
    /// Called on the store's thread after a commit's answers were handed to their loops and
    /// before the cache takes its versions, under the lock; tests hold a commit here to show
    /// that no request gets in between.
    var commitWillApply: (@Sendable () -> Void)?
    /// Called for every profile read, on the reading loop and under the service's lock:
    /// speaker, hit (the prefetch worker's events). It must not call back into the service.
    public var onAccess: (@Sendable (String, Bool) -> Void)?
    /// How long a commit waits for the writers of the last batch to write again (see
    /// `GroupCommitQueue`); a fraction of an fsync.
    let commitHold: TimeAmount
    var accessed = AccessLog()
    private var accessFlush: RepeatedTask?
    /// True while a background preload runs (see `init`): identify and stats wait for it, and
    /// every speaker written, deleted or reread meanwhile is noted so that the preload's older
    /// snapshot of it is replaced when the preload is installed.
    var preloading = false
    var touchedDuringPreload: Set<String> = []
    let preloadDone: EventLoopPromise<Void>
    var preloadTimes: (scan: Duration, admit: Duration)? = nil

    /// Opens (or creates) the store and preloads it: every live embedding into the identify
    /// matrix, the most recently used profiles into the cache up to its capacity.
    ///
    /// `preloadInBackground`: return at once and preload on a thread and an SQLite connection
    /// of its own, so that the worker serves within milliseconds of a restart however many
    /// profiles there are (100 000 take half a second or more to preload here; the worker
    /// reports ready to the supervisor when `preloadFinished` completes). Meanwhile
    /// reads that miss go to SQLite, as any miss does, and writes commit as usual; identify
    /// and stats wait for the preload (identify needs every embedding). `preloadFinished`
    /// completes when it is in, or fails with what broke it. `installPreloadAfter` (tests)
    /// holds the finished preload back until it completes.
    public init(
        configuration: StoreConfiguration, cacheCapacity: Int, defaultThreshold: Float = 0.25,
        accessFlushInterval: TimeAmount = .seconds(5), commitHold: TimeAmount = .microseconds(500),
        preloadInBackground: Bool = false, installPreloadAfter gate: EventLoopFuture<Void>? = nil, loop: EventLoop
    ) throws {
        self.loop = loop
        self.commitHold = commitHold
        self.store = try ProfileStore(configuration: configuration)
        self.rules = store.rules
        self.defaultThreshold = defaultThreshold
        self.preloadDone = loop.makePromise()
        if preloadInBackground {
            self.matrix = EmbeddingMatrix(dimension: configuration.dimension)
            self.policy = SieveCachePolicy(capacity: cacheCapacity)
            self.preloading = true
        } else {
            let preloaded = try Self.preload(store, cacheCapacity: cacheCapacity)
            self.preloadTimes = (preloaded.scanTime, preloaded.admitTime)
            self.matrix = preloaded.matrix
            self.cache = preloaded.cache
            self.policy = preloaded.policy
            preloadDone.succeed()
        }
        self.storeThread = NIOThreadPool(numberOfThreads: 1)
        storeThread.start()
        self.scanThread = NIOThreadPool(numberOfThreads: 1)
        scanThread.start()
        accessFlush = loop.scheduleRepeatedTask(initialDelay: accessFlushInterval, delay: accessFlushInterval) { _ in
            self.flushAccesses()
        }
        if preloadInBackground {
            let preloader = NIOThreadPool(numberOfThreads: 1)
            preloader.start()
            preloader.runIfActive(eventLoop: loop) {
                // A connection of its own: the store thread stays free for misses and writes.
                // Then a lower priority (nice 10, this thread only; after the open, which may
                // take the write lock for a moment): on two cores the requests that arrive
                // meanwhile come first.
                let reader = try ProfileStore(configuration: configuration)
                _ = voxsync_nice_this_thread(10)
                return try Self.preload(reader, cacheCapacity: cacheCapacity)
            }.flatMap { preloaded in
                (gate ?? loop.makeSucceededVoidFuture()).map { preloaded }
            }.whenComplete { outcome in
                switch outcome {
                case .success(let preloaded):
                    self.locked { self.install(preloaded) }
                    self.preloadDone.succeed()  // outside the lock: waiting requests take it
                case .failure(let error): self.preloadDone.fail(error)
                }
                preloader.shutdownGracefully { _ in }
            }
        }
    }

    /// Completes once the preload is in (at once unless it runs in the background).
    public var preloadFinished: EventLoopFuture<Void> { preloadDone.futureResult }

    /// Writes the access times noted so far, then stops the store's thread (after the server
    /// has stopped sending requests).
    public func shutdown() async throws {
        try? await loop.flatSubmit {
            self.accessFlush?.cancel()
            return self.flushAccesses()
        }.get()
        try await scanThread.shutdownGracefully()
        try await storeThread.shutdownGracefully()
    }

    /// One line for the start-up summary (or, after a background preload, the log).
    public var summary: String { locked { unlockedSummary } }

    private var unlockedSummary: String {
        func milliseconds(_ duration: Duration) -> Int {
            Int((Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15).rounded())
        }
        guard let (scan, admit) = preloadTimes else {
            return "preloading in the background (cache capacity \(policy.capacity))"
        }
        return "\(matrix.count) profiles, \(cache.count) preloaded into the cache (capacity \(policy.capacity)) in \(milliseconds(scan + admit)) ms (scan \(milliseconds(scan)), cache \(milliseconds(admit)))"
    }

    /// Answers on the connection's own loop (see the type's documentation).
    public func respond(to request: Envelope.OneOf_Message, connection: ConnectionInfo) -> ServerResponse {
        handle(request, on: connection.eventLoop)
    }

    /// Runs `body` holding the state's lock. Never nested, and nothing in `body` completes a
    /// promise or calls out of the service (except `onAccess`, which must not call back, and
    /// `execute` on a loop, which only queues a task).
    @inline(__always)
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: Operations

    private func handle(_ request: Envelope.OneOf_Message, on connectionLoop: EventLoop) -> ServerResponse {
        metrics.query(request)
        switch request {
        case .get(let get):
            do { try rules.checkSpeakerID(get.speakerID) } catch { return .now(Self.answer(for: error)) }
            return timedRead { self.get(get.speakerID) }
        case .verify(let verify): return timedRead { self.verify(verify) }
        case .put(let put): return self.put(put, answeredOn: connectionLoop)
        case .identify(let identify):
            return afterPreload { self.identify(identify, answeredOn: connectionLoop) }
        case .delete(let delete): return self.delete(delete.speakerID)
        case .list(let list): return self.list(list)
        case .stats:
            return afterPreload { self.stats() }
        default:
            return .now(Self.error(.invalidArgument, "\(request.name) is not a request this socket serves"))
        }
    }

    /// Times a read to its answer, labelled with where the answer came from.
    private func timedRead(_ read: () -> ServerResponse) -> ServerResponse {
        let started = NIODeadline.now()
        let answer = read()
        switch answer {
        case .now:
            metrics.readFromCache.recordNanoseconds((NIODeadline.now() - started).nanoseconds)
        case .later(let future):
            future.whenSuccess { _ in self.metrics.readFromSQLite.recordNanoseconds((NIODeadline.now() - started).nanoseconds) }
        }
        return answer
    }

    private func get(_ speakerID: String) -> ServerResponse {
        let hit: ProfileRecord? = locked {
            guard let cached = lookup(speakerID), let embedding = matrix.embedding(of: speakerID) else { return nil }
            return cached.record(embedding: embedding)
        }
        if let hit { return .now(.getOk(Self.getResponse(hit, source: .cache))) }
        return .later(onStore { store in
            guard let record = try store.get(speakerID) else { return Self.notFound(speakerID) }
            self.locked { _ = self.admit(record) }
            return .getOk(Self.getResponse(record, source: .sqlite))
        }.flatMapErrorThrowing(Self.answer(for:)))
    }

    private func verify(_ request: Voxsync_V1_VerifyRequest) -> ServerResponse {
        do {
            try rules.checkSpeakerID(request.speakerID)
            try rules.checkVector(request.probe.values, field: "probe")
            try rules.checkModel(request.probe.model, field: "probe.model")
        } catch {
            return .now(Self.answer(for: error))
        }
        let probe = VectorMath.normalized(request.probe.values)
        let hit: Envelope.OneOf_Message? = locked {
            guard let cached = lookup(request.speakerID) else { return nil }
            return verdict(cached, probe: probe, source: .cache)
        }
        if let hit { return .now(hit) }
        return .later(onStore { store in
            guard let record = try store.get(request.speakerID),
                let answer = self.locked({ self.verdict(self.admit(record), probe: probe, source: .sqlite) })
            else {
                return Self.notFound(request.speakerID)
            }
            return answer
        }.flatMapErrorThrowing(Self.answer(for:)))
    }

    /// The scan (4–5 ms for 100 000 × 192) runs on a snapshot, outside the lock and on the scan
    /// thread: verifies and writes go on meanwhile, on both loops, and the answer is the matrix
    /// as it was when the scan started.
    private func identify(_ request: Voxsync_V1_IdentifyRequest, answeredOn connectionLoop: EventLoop) -> ServerResponse {
        do {
            try rules.checkVector(request.probe.values, field: "probe")
            try rules.checkModel(request.probe.model, field: "probe.model")
        } catch {
            return .now(Self.answer(for: error))
        }
        guard request.minScore.isFinite, (-1...1).contains(request.minScore) else {
            return .now(Self.error(.invalidArgument, "min_score must be a cosine similarity between -1 and 1 (0 means no filter); got \(request.minScore)", field: "min_score"))
        }
        let k = request.k == 0 ? 5 : Int(request.k)
        guard (1...1000).contains(k) else {
            return .now(Self.error(.invalidArgument, "k must be between 1 and 1000 (0 means 5); got \(request.k)", field: "k"))
        }
        let probe = request.probe.values, minScore = request.minScore == 0 ? -.infinity : request.minScore
        return .later(scanThread.runIfActive(eventLoop: connectionLoop) { () -> Envelope.OneOf_Message in
            // Taken here, not when the request came: only the running scan keeps a snapshot,
            // however many identifies wait for the thread.
            let (snapshot, willScan) = self.locked { (self.matrix.snapshot, self.identifyWillScan) }
            willScan?()
            var answer = Voxsync_V1_IdentifyResponse()
            answer.matches = snapshot.topK(probe, k: k, minScore: minScore).map {
                var match = Voxsync_V1_Match()
                match.speakerID = $0.id
                match.score = $0.score
                return match
            }
            return .identifyOk(answer)
        }.flatMapErrorThrowing { _ in
            // The scan thread is stopping: the worker shuts down.
            Self.error(.unavailable, "the cache worker is shutting down; retry once it is back")
        })
    }

    private func delete(_ speakerID: String) -> ServerResponse {
        do { try rules.checkSpeakerID(speakerID) } catch { return .now(Self.answer(for: error)) }
        let now = Self.nowMilliseconds()
        return .later(onStore { store in
            let result = try store.delete(speakerID, now: now)
            self.locked {
                self.touch(speakerID)
                self.matrix.remove(speakerID)
                self.cache[speakerID] = nil
                self.policy.remove(speakerID)
                self.prefetched.forget(speakerID)
            }
            if result.existed { self.onCommitted?() }
            var answer = Voxsync_V1_DeleteResponse()
            answer.version = result.version
            answer.existed = result.existed
            return .deleteOk(answer)
        }.flatMapErrorThrowing(Self.answer(for:)))
    }

    private func list(_ request: Voxsync_V1_ListRequest) -> ServerResponse {
        let size = request.pageSize == 0 ? 100 : Int(request.pageSize)
        guard (1...1000).contains(size) else {
            return .now(Self.error(.invalidArgument, "page_size must be between 1 and 1000 (0 means 100); got \(request.pageSize)", field: "page_size"))
        }
        let prefix = request.prefix
        let after = request.pageToken
        return .later(onStore { store in try store.list(prefix: prefix, after: after, limit: size) }.map { ids in
            var answer = Voxsync_V1_ListResponse()
            answer.speakerIds = ids
            answer.nextPageToken = ids.count == size ? ids.last! : ""
            return .listOk(answer)
        }.flatMapErrorThrowing(Self.answer(for:)))
    }

    private func stats() -> ServerResponse {
        let (profiles, entries, capacity, hits, misses, prefetched) = locked {
            (matrix.count, cache.count, policy.capacity, self.hits, self.misses, self.prefetched)
        }
        return .later(onStore { store in try store.outboxCount() }.map { pending in
            var answer = Voxsync_V1_StatsResponse()
            answer.profiles = UInt64(profiles)
            answer.cacheEntries = UInt64(entries)
            answer.cacheCapacity = UInt64(capacity)
            answer.cacheHits = hits
            answer.cacheMisses = misses
            answer.outboxPending = UInt64(pending)
            answer.extra = [
                "prefetch_loaded": Double(prefetched.loaded), "prefetch_used": Double(prefetched.used),
                "prefetch_wasted": Double(prefetched.wasted),
            ]
            // Absent until a prefetched entry was read or evicted: 0 would claim a measurement.
            if let precision = prefetched.precision { answer.extra["prefetch_precision"] = precision }
            return .statsOk(answer)
        }.flatMapErrorThrowing(Self.answer(for:)))
    }

    /// Writes the access times noted since the last flush, all stamped now (advisory: a
    /// failure only costs preload quality, so it is not retried).
    @discardableResult
    private func flushAccesses() -> EventLoopFuture<Void> {
        let drained = locked { accessed.count > 0 ? accessed.drain() : [] }
        guard !drained.isEmpty else { return loop.makeSucceededVoidFuture() }
        let now = Self.nowMilliseconds()
        let accesses = drained.map { (speakerID: $0, at: now) }
        return onStore { store in try store.recordAccess(accesses) }
    }

    static func nowMilliseconds() -> Int64 {
        WallClock.nowMilliseconds()
    }
}
