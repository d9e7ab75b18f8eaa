// STUB: the interface is fixed; the logic is being written (replaced wholesale).

/// Decides, each interval, which predicted speakers to send to the cache: those at or above
/// the threshold, highest confidence first, at most `maxPerInterval`, and not one already
/// sent within the window (the cache still holds it, or evicted it unread).
public struct PrefetchPlanner: Sendable {
    public var maxPerInterval: Int

    public init(maxPerInterval: Int) {
        self.maxPerInterval = maxPerInterval
    }

    /// The speakers to send now.
    public mutating func plan(_ predictions: [Prediction], threshold: Double, nowMilliseconds: Int64, windowMilliseconds: Int64) -> [String] {
        Array(predictions.filter { $0.confidence >= threshold }.prefix(maxPerInterval).map(\.speaker))
    }
}

/// The prefetch threshold, moved within bounds by the precision the cache measures.
public struct AdaptiveThreshold: Sendable, Equatable {
    public struct Configuration: Sendable, Equatable {
        public var initial: Double
        public var minimum: Double
        public var maximum: Double
        /// The precision aimed at (prefetched entries read before eviction).
        public var targetPrecision: Double
        /// Whether the threshold moves at all.
        public var adaptive: Bool

        public init(initial: Double = 0.7, minimum: Double = 0.5, maximum: Double = 0.95, targetPrecision: Double = 0.8, adaptive: Bool = true) {
            self.initial = initial
            self.minimum = minimum
            self.maximum = maximum
            self.targetPrecision = targetPrecision
            self.adaptive = adaptive
        }
    }

    public let configuration: Configuration
    public private(set) var value: Double

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        self.value = configuration.initial
    }

    /// Feeds the figures of one interval: prefetched entries read (`used`) and evicted unread
    /// (`wasted`) since the last call, and cache misses seen (`misses`). Returns the new value.
    @discardableResult
    public mutating func observe(used: UInt64, wasted: UInt64, misses: UInt64) -> Double {
        value
    }

    /// Restores a value kept across restarts (clamped to the bounds).
    public mutating func restore(_ saved: Double) {
        value = min(max(saved, configuration.minimum), configuration.maximum)
    }
}
