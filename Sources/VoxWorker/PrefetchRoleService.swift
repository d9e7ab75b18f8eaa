import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import VoxCore
import VoxMetrics
import VoxPrefetch
import VoxStore
import VoxSync
import VoxTransport
import VoxWire

/// The prefetch worker: learns who is read when from the cache's access events, and every
/// `prefetch_interval_ms` tells the cache whom to load before they are asked for.
///
/// At start it replays its history file (`<data>/prefetch.sqlite`) into the predictor and
/// restores the adaptive threshold, so a restart — a SIGKILL included — forgets at most the
/// last second of events. It serves `<run>/prefetch.sock` (access events from the cache,
/// `voxsync prefetch predictions`). Each interval: predictions above the threshold inside
/// the window, picked by the planner, go to `cache.sock` as a `PrefetchList`; the answer's
/// used/wasted totals move the threshold. The cache being down costs that interval's list,
/// nothing else.
final class PrefetchRoleService: WorkerRoleService {
    private let configuration: VoxsyncConfiguration
    private let instanceID: String
    private let registry: MetricsRegistry
    private let logger: Logger
    private let parts = NIOLockedValueBoxHolder<Parts>()
    /// How often pending history is written (and the figures exported).
    static let flushInterval: Duration = .seconds(1)
    /// How often the history is pruned to its bounds (also once at start, and whenever a
    /// tenth of `prefetch_history_max_events` has been appended since the last prune, so a
    /// busy cache cannot take the file far past its bound between hourly prunes).
    static let pruneInterval: Duration = .seconds(3600)

    private struct Parts: Sendable {
        var engine: PrefetchEngine
        var history: PrefetchHistoryThread
        var server: UnixSocketServer
        var cache: PeerRequester
        var wakeup: Wakeup
    }

    init(configuration: VoxsyncConfiguration, instanceID: String, registry: MetricsRegistry, logger: Logger) {
        self.configuration = configuration
        self.instanceID = instanceID
        self.registry = registry
        self.logger = logger
    }

    private var windowMilliseconds: Int64 { Int64((configuration.prefetchWindow.seconds * 1000).rounded()) }
    private var maxAgeMilliseconds: Int64 { Int64(configuration.prefetchHistoryDays) * 86_400_000 }

    func prepare() async throws -> String {
        let history = try await PrefetchHistoryThread.open(path: configuration.dataDirectory + "/prefetch.sqlite")
        let (maxEvents, maxAge) = (configuration.prefetchHistoryMaxEvents, maxAgeMilliseconds)
        let predictorConfiguration = PrefetchPredictor.Configuration(utcOffsetSeconds: TimeZone.current.secondsFromGMT())
        // Prune, load and replay on the history's thread: a million events take a while, and
        // the worker is not ready (nor serving) until they are in.
        let (predictor, replayed, saved) = try await history.run { store in
            let now = Self.nowMilliseconds()
            try store.prune(olderThan: now - maxAge, newerThan: now + PrefetchEngine.maxClockSkewMilliseconds, maxEvents: maxEvents, now: now)
            var predictor = PrefetchPredictor(configuration: predictorConfiguration)
            var replayed = 0
            try store.forEach(limit: maxEvents) { access in
                predictor.record(access.speaker, atMilliseconds: access.atMilliseconds)
                replayed += 1
            }
            return (predictor, replayed, try store.loadThreshold())
        }
        var threshold = AdaptiveThreshold(configuration: .init(
            initial: configuration.prefetchThreshold, minimum: 0.5, maximum: 0.95, targetPrecision: 0.8,
            adaptive: configuration.prefetchAdaptive))
        // An adaptive threshold carries on where it was; a fixed one is the configured value.
        if configuration.prefetchAdaptive, let saved { threshold.restore(saved) }
        let engine = PrefetchEngine(
            predictor: predictor, planner: PrefetchPlanner(maxPerInterval: PrefetchPlanner.perInterval(
                configured: configuration.prefetchMaxPerInterval, cacheCapacity: configuration.cacheCapacity)),
            threshold: threshold, rules: ProfileRules(dimension: configuration.embeddingDimension),
            settings: .init(windowMilliseconds: windowMilliseconds, maxEventAgeMilliseconds: maxAge))
        let server = try await WorkerSocket.bind(
            .prefetch, configuration: configuration, instanceID: instanceID,
            responder: PrefetchResponder(engine: engine), logger: logger)
        let cache = PeerRequester(
            path: configuration.workerSocketPath(.cache), clientName: "voxsyncd prefetch",
            group: MultiThreadedEventLoopGroup.singleton)
        parts.value = Parts(
            engine: engine, history: history, server: server, cache: cache,
            wakeup: Wakeup(loop: MultiThreadedEventLoopGroup.singleton.next()))
        engine.export(to: registry)
        logger.debug("prefetch history replayed", metadata: ["events": "\(replayed)"])
        return engine.summary + "; every \(Self.text(configuration.prefetchInterval)), window \(Self.text(configuration.prefetchWindow))"
    }

    func run() async throws {
        guard let parts = parts.value else { return }
        let stopping = NIOLockedValueBox(false)
        await withGracefulShutdownHandler {
            let clock = ContinuousClock()
            var nextTick = clock.now + configuration.prefetchInterval
            var nextFlush = clock.now + Self.flushInterval
            var nextPrune = clock.now + Self.pruneInterval
            var appendedSincePrune = 0
            let pruneEvery = max(1000, configuration.prefetchHistoryMaxEvents / 10)
            while !stopping.withLockedValue({ $0 }) {
                await parts.wakeup.wait(upTo: clock.now.duration(to: min(nextTick, nextFlush)))
                if stopping.withLockedValue({ $0 }) { break }
                let now = clock.now
                if now >= nextFlush {
                    appendedSincePrune += await flush(parts)
                    nextFlush = now + Self.flushInterval
                }
                if now >= nextTick {
                    await tick(parts)
                    // From now, not from the schedule: a slow tick is not followed by a burst.
                    nextTick = clock.now + configuration.prefetchInterval
                }
                if now >= nextPrune || appendedSincePrune >= pruneEvery {
                    await prune(parts)
                    nextPrune = now + Self.pruneInterval
                    appendedSincePrune = 0
                }
                parts.engine.export(to: registry)
            }
        } onGracefulShutdown: {
            stopping.withLockedValue { $0 = true }
            parts.wakeup.signal()
        }
        // No more events once the socket is closed: then whatever is pending goes to disk.
        await parts.server.shutdown()
        await flush(parts)
        await parts.cache.close()
        await parts.history.close()
        logger.info("prefetch stopped", metadata: ["threshold": "\(parts.engine.threshold)"])
    }

    /// Writes the events received since the last flush in one transaction; returns how many
    /// were written. A failure is logged and counted; the events stay learned, only their
    /// history is lost.
    @discardableResult
    private func flush(_ parts: Parts) async -> Int {
        let batch = parts.engine.takeHistory()
        guard !batch.isEmpty else { return 0 }
        do {
            try await parts.history.run { store in try store.append(batch) }
            return batch.count
        } catch {
            parts.engine.historyLost(batch.count)
            logger.warning("cannot write prefetch history; the events stay learned until a restart", metadata: [
                "events": "\(batch.count)", "error": "\(error)",
            ])
            return 0
        }
    }

    /// One interval: plan, send the list to the cache, feed its answer to the threshold.
    private func tick(_ parts: Parts) async {
        let speakers = parts.engine.plan(nowMilliseconds: Self.nowMilliseconds())
        var list = Voxsync_V1_PrefetchList()
        list.speakerIds = speakers
        // Sent even when empty: the answer carries the cache's used/wasted totals, which the
        // threshold needs whether or not there is anything to load.
        do {
            let answer = try await parts.cache.request(.prefetchList(list), timeout: .seconds(5))
            guard case .prefetchListOk(let response) = answer else {
                logger.warning("the cache refused a prefetch list", metadata: ["answer": "\(answer.name)"])
                return
            }
            if let moved = parts.engine.observe(response, sent: speakers.count) {
                logger.debug("prefetch threshold moved", metadata: ["threshold": "\(moved)"])
                do {
                    try await parts.history.run { store in try store.saveThreshold(moved) }
                } catch {
                    logger.warning("cannot save the prefetch threshold", metadata: ["error": "\(error)"])
                }
            }
        } catch {
            // The cache restarting, or not up yet: this interval's list is lost, the next one
            // is planned afresh.
            logger.debug("cannot send the prefetch list to the cache", metadata: ["error": "\(error)", "speakers": "\(speakers.count)"])
        }
    }

    private func prune(_ parts: Parts) async {
        let (maxEvents, maxAge) = (configuration.prefetchHistoryMaxEvents, maxAgeMilliseconds)
        do {
            let removed = try await parts.history.run { store in
                let now = Self.nowMilliseconds()
                return try store.prune(
                    olderThan: now - maxAge, newerThan: now + PrefetchEngine.maxClockSkewMilliseconds, maxEvents: maxEvents, now: now)
            }
            logger.debug("prefetch history pruned", metadata: ["removed": "\(removed)"])
        } catch {
            logger.warning("cannot prune the prefetch history", metadata: ["error": "\(error)"])
        }
    }

    static func nowMilliseconds() -> Int64 {
        WallClock.nowMilliseconds()
    }

    private static func text(_ duration: Duration) -> String {
        let seconds = duration.seconds
        return seconds == seconds.rounded() ? "\(Int(seconds)) s" : String(format: "%.1f s", seconds)
    }
}
