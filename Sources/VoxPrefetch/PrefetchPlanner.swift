/// Decides, each interval, which predicted speakers to send to the cache: those at or above
/// the threshold, highest confidence first, at most `maxPerInterval`, and not one already
/// sent within the window (the cache still holds it, or evicted it unread — sending it again
/// at once would only repeat the waste).
public struct PrefetchPlanner: Sendable {
    public var maxPerInterval: Int
    /// Speaker → when it was last sent (unix ms); entries older than a window are dropped.
    private var sent: [String: Int64] = [:]

    public init(maxPerInterval: Int) {
        precondition(maxPerInterval > 0)
        self.maxPerInterval = maxPerInterval
    }

    /// The cap per interval for a cache of `cacheCapacity` profiles: the configured maximum,
    /// but never more than a tenth of the cache. Prefetched entries wait minutes for their
    /// read; sent faster than that they evict each other first (on the office replay at 1 %
    /// of the speakers, sending up to the whole cache each interval gave a precision of 0.12,
    /// a tenth 0.59; at 10 %, 0.85 and 0.88).
    public static func perInterval(configured: Int, cacheCapacity: Int) -> Int {
        max(1, min(configured, cacheCapacity / 10))
    }

    /// The speakers to send now, given predictions ordered by confidence.
    public mutating func plan(_ predictions: [Prediction], threshold: Double, nowMilliseconds now: Int64, windowMilliseconds window: Int64) -> [String] {
        sent = sent.filter { now - $0.value < window }
        var chosen: [String] = []
        for prediction in predictions where prediction.confidence >= threshold && sent[prediction.speaker] == nil {
            chosen.append(prediction.speaker)
            sent[prediction.speaker] = now
            if chosen.count == maxPerInterval { break }
        }
        return chosen
    }

    /// Speakers sent within the last window (bounded by the sends of one window).
    public var recentlySent: Int { sent.count }
}

/// The prefetch threshold, moved within bounds by the precision the cache measures.
///
/// Every time at least `minimumSamples` prefetched entries have been decided (read, or evicted
/// unread), their precision is compared with the target: below it the threshold rises by
/// `step` (fewer, surer prefetches); at least `margin` above it, while the cache still misses,
/// it falls by `step` (more prefetches, since they are paying off). Then the count restarts.
public struct AdaptiveThreshold: Sendable, Equatable {
    public struct Configuration: Sendable, Equatable {
        public var initial: Double
        public var minimum: Double
        public var maximum: Double
        /// The precision aimed at (prefetched entries read before eviction).
        public var targetPrecision: Double
        /// Whether the threshold moves at all.
        public var adaptive: Bool
        public var step: Double
        public var margin: Double
        public var minimumSamples: UInt64

        public init(
            initial: Double = 0.7, minimum: Double = 0.5, maximum: Double = 0.95, targetPrecision: Double = 0.8,
            adaptive: Bool = true, step: Double = 0.05, margin: Double = 0.1, minimumSamples: UInt64 = 20
        ) {
            precondition(minimum <= maximum && step > 0 && (0...1).contains(initial))
            // A start value outside the bounds widens them: a configured 0.3 (or a fixed 0.99)
            // is what the operator asked for, not something to clamp away.
            self.initial = initial
            self.minimum = Swift.min(minimum, initial)
            self.maximum = Swift.max(maximum, initial)
            self.targetPrecision = targetPrecision
            self.adaptive = adaptive
            self.step = step
            self.margin = margin
            self.minimumSamples = max(1, minimumSamples)
        }
    }

    public let configuration: Configuration
    public private(set) var value: Double
    private var used: UInt64 = 0
    private var wasted: UInt64 = 0
    private var misses: UInt64 = 0

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        self.value = configuration.initial
    }

    /// Feeds the figures of one interval: prefetched entries read (`used`) and evicted unread
    /// (`wasted`) since the last call, and cache misses seen (`misses`). Returns the new value.
    @discardableResult
    public mutating func observe(used: UInt64, wasted: UInt64, misses: UInt64) -> Double {
        guard configuration.adaptive else { return value }
        self.used &+= used
        self.wasted &+= wasted
        self.misses &+= misses
        let decided = self.used &+ self.wasted
        guard decided >= configuration.minimumSamples else { return value }
        let precision = Double(self.used) / Double(decided)
        if precision < configuration.targetPrecision {
            value = min(configuration.maximum, value + configuration.step)
        } else if precision >= configuration.targetPrecision + configuration.margin, self.misses > 0 {
            value = max(configuration.minimum, value - configuration.step)
        }
        self.used = 0
        self.wasted = 0
        self.misses = 0
        return value
    }

    /// Restores a value kept across restarts (clamped to the bounds).
    public mutating func restore(_ saved: Double) {
        guard saved.isFinite else { return }
        value = min(max(saved, configuration.minimum), configuration.maximum)
    }
}
