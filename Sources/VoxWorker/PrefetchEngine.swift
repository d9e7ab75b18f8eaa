import Foundation
import NIOConcurrencyHelpers
import VoxCore
import VoxMetrics
import VoxPrefetch
import VoxStore
import VoxWire

/// The prefetch worker's state — the predictor, the planner, the threshold and the counters —
/// behind one lock, so that the socket's event loop (access events, `voxsync prefetch
/// predictions`) and the interval loop see one consistent learner. The learning itself is the
/// pure `VoxPrefetch` types; this only feeds them and keeps the figures around them.
///
/// A prediction pass over 100 000 speakers takes milliseconds; events arriving meanwhile wait
/// for the lock, which the cache never notices (it does not wait for the Ack).
final class PrefetchEngine: Sendable {
    struct Settings: Sendable {
        var windowMilliseconds: Int64
        /// Access events older than this (the history's age bound) are refused.
        var maxEventAgeMilliseconds: Int64
        /// Events waiting to be written to the history file; beyond it they are dropped (and
        /// counted), so a slow or failing disk cannot grow the worker.
        var maxPendingHistory = 100_000
    }

    /// Most events in one `AccessEvents` message (the cache sends at most 256 at a time).
    static let maxEventsPerMessage = 10_000
    /// How far ahead of this process's clock an event may be stamped (the cache's clock is the
    /// same machine's, so only a clock step puts one there).
    static let maxClockSkewMilliseconds: Int64 = 60_000

    private struct State {
        var predictor: PrefetchPredictor
        var planner: PrefetchPlanner
        var threshold: AdaptiveThreshold
        var pendingHistory: [PrefetchAccess] = []
        /// Accesses taken since this worker started (replayed history not included).
        var received: UInt64 = 0
        var rejected: UInt64 = 0
        var historyDropped: UInt64 = 0
        /// Cache misses among the events since the threshold last observed an interval.
        var missesSinceObserved: UInt64 = 0
        var sentTotal: UInt64 = 0
        var lastPredictions = 0
        var lastRunMilliseconds: Int64 = 0
        /// The cache's prefetch totals of its last answer, and what changed since.
        var cacheTotals = CacheTotals()
    }

    let settings: Settings
    private let rules: ProfileRules
    private let state: NIOLockedValueBox<State>

    init(predictor: PrefetchPredictor, planner: PrefetchPlanner, threshold: AdaptiveThreshold, rules: ProfileRules, settings: Settings) {
        self.settings = settings
        self.rules = rules
        self.state = NIOLockedValueBox(State(predictor: predictor, planner: planner, threshold: threshold))
    }

    // MARK: Access events

    /// Learns from the valid events of one message and queues them for the history file;
    /// invalid ones (a bad speaker id, a time far from now) are counted and skipped. Returns
    /// how many were refused.
    @discardableResult
    func record(_ events: [Voxsync_V1_AccessEvent], nowMilliseconds now: Int64) -> Int {
        let oldest = now - settings.maxEventAgeMilliseconds
        let newest = now + Self.maxClockSkewMilliseconds
        let valid = events.filter { event in
            (oldest...newest).contains(event.atUnixMs) && (try? rules.checkSpeakerID(event.speakerID)) != nil
        }
        let refused = events.count - valid.count
        state.withLockedValue { state in
            state.rejected += UInt64(refused)
            for event in valid {
                state.received += 1
                if !event.hit { state.missesSinceObserved += 1 }
                // A repeat within a second of the speaker's last read teaches nothing and is
                // not kept (see `PrefetchPredictor.sameReadMilliseconds`).
                guard state.predictor.record(event.speakerID, atMilliseconds: event.atUnixMs) else { continue }
                if state.pendingHistory.count < settings.maxPendingHistory {
                    state.pendingHistory.append(PrefetchAccess(speaker: event.speakerID, atMilliseconds: event.atUnixMs))
                } else {
                    state.historyDropped += 1
                }
            }
        }
        return refused
    }

    /// A message refused whole (too many events): its events count as rejected.
    func refuse(_ count: Int) {
        state.withLockedValue { $0.rejected += UInt64(count) }
    }

    // MARK: History

    /// The events not yet written to the history file (the caller writes them).
    func takeHistory() -> [PrefetchAccess] {
        state.withLockedValue { state in
            defer { state.pendingHistory.removeAll(keepingCapacity: false) }
            return state.pendingHistory
        }
    }

    /// `count` events could not be written: they are lost to the history (not to the
    /// predictor, which learned them already).
    func historyLost(_ count: Int) {
        state.withLockedValue { $0.historyDropped += UInt64(count) }
    }

    // MARK: The interval

    /// The speakers to send to the cache now: predictions inside the window at or above the
    /// threshold, as the planner picks them.
    func plan(nowMilliseconds now: Int64) -> [String] {
        state.withLockedValue { state in
            let value = state.threshold.value
            let predictions = state.predictor.predictions(
                nowMilliseconds: now, windowMilliseconds: settings.windowMilliseconds, minimumConfidence: value)
            state.lastPredictions = predictions.count
            state.lastRunMilliseconds = now
            return state.planner.plan(predictions, threshold: value, nowMilliseconds: now, windowMilliseconds: settings.windowMilliseconds)
        }
    }

    /// The cache's answer to a list of `sent` speakers: feeds what changed since the last
    /// answer (prefetched entries read, evicted unread, and the misses seen meanwhile) to the
    /// threshold. Returns the threshold's new value when it moved (to be kept on disk).
    func observe(_ answer: Voxsync_V1_PrefetchListResponse, sent: Int) -> Double? {
        state.withLockedValue { state in
            state.sentTotal += UInt64(sent)
            guard let change = state.cacheTotals.update(used: answer.usedTotal, wasted: answer.wastedTotal) else {
                state.missesSinceObserved = 0
                return nil
            }
            let misses = state.missesSinceObserved
            state.missesSinceObserved = 0
            let before = state.threshold.value
            let after = state.threshold.observe(used: change.used, wasted: change.wasted, misses: misses)
            return after == before ? nil : after
        }
    }

    var threshold: Double {
        state.withLockedValue { $0.threshold.value }
    }

    // MARK: Reports

    /// The answer to `voxsync prefetch predictions`: every confidence, not only those above
    /// the threshold, so an operator sees what is just below it.
    func report(nowMilliseconds now: Int64, windowMilliseconds window: Int64, limit: Int) -> Voxsync_V1_PrefetchPredictionsResponse {
        state.withLockedValue { state in
            var answer = Voxsync_V1_PrefetchPredictionsResponse()
            answer.predictions = state.predictor.predictions(
                nowMilliseconds: now, windowMilliseconds: window, minimumConfidence: 0, limit: limit
            ).map { prediction in
                var message = Voxsync_V1_PrefetchPrediction()
                message.speakerID = prediction.speaker
                message.confidence = prediction.confidence
                message.expectedAtUnixMs = prediction.expectedAtMilliseconds
                message.reason = prediction.reason.rawValue
                return message
            }
            let statistics = state.predictor.statistics
            answer.threshold = state.threshold.value
            answer.totalAccesses = statistics.totalAccesses
            answer.speakers = UInt32(clamping: statistics.speakers)
            answer.activePatterns = UInt32(clamping: statistics.activePatterns)
            answer.historyEvents = UInt64(max(0, statistics.historyEvents))
            answer.sentTotal = state.sentTotal
            answer.usedTotal = state.cacheTotals.used
            answer.wastedTotal = state.cacheTotals.wasted
            answer.precision = state.cacheTotals.precision ?? -1
            answer.lastRunUnixMs = state.lastRunMilliseconds
            return answer
        }
    }

    /// One line for the start-up summary.
    var summary: String {
        state.withLockedValue { state in
            let statistics = state.predictor.statistics
            return "\(statistics.speakers) speakers, \(statistics.historyEvents) events of history, threshold \(String(format: "%.2f", state.threshold.value))"
        }
    }

    /// Sets the prefetch worker's figures in the registry the metrics reporter sends.
    func export(to registry: MetricsRegistry) {
        let state = state.withLockedValue { $0 }
        let statistics = state.predictor.statistics
        registry.setCounter("prefetch_accesses_total", to: Double(state.received))
        registry.setCounter("prefetch_rejected_events_total", to: Double(state.rejected))
        registry.setCounter("prefetch_sent_total", to: Double(state.sentTotal))
        registry.setCounter("prefetch_history_dropped_total", to: Double(state.historyDropped))
        registry.setGauge("prefetch_speakers", to: Double(statistics.speakers))
        registry.setGauge("prefetch_active_patterns", to: Double(statistics.activePatterns))
        registry.setGauge("prefetch_history_events", to: Double(statistics.historyEvents))
        registry.setGauge("prefetch_threshold", to: state.threshold.value)
        registry.setGauge("prefetch_predictions", to: Double(state.lastPredictions))
    }
}
