// STUB: the interface is fixed; the learning is being written (replaced wholesale).

/// Learns per speaker when they are read and predicts who will be read soon. Pure: driven only
/// by the timestamps it is given, so a trace replays in simulated time.
public struct PrefetchPredictor: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Speakers tracked; beyond it the one seen least recently is forgotten.
        public var maxSpeakers: Int
        /// Access times kept per speaker (oldest dropped first).
        public var historyPerSpeaker: Int
        /// Offset of local time from UTC, for daily routines (seconds; DST is not followed).
        public var utcOffsetSeconds: Int

        public init(maxSpeakers: Int = 100_000, historyPerSpeaker: Int = 256, utcOffsetSeconds: Int = 0) {
            self.maxSpeakers = maxSpeakers
            self.historyPerSpeaker = historyPerSpeaker
            self.utcOffsetSeconds = utcOffsetSeconds
        }
    }

    public let configuration: Configuration
    var history: [String: [Int64]] = [:]
    var total: UInt64 = 0

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// Records a read of `speaker` at `atMilliseconds` (unix ms). Out-of-order times are accepted.
    public mutating func record(_ speaker: String, atMilliseconds: Int64) {
        history[speaker, default: []].append(atMilliseconds)
        total += 1
    }

    /// The speakers expected inside `[now, now + window]` with at least `minimumConfidence`,
    /// highest confidence first, at most `limit`.
    public func predictions(nowMilliseconds: Int64, windowMilliseconds: Int64, minimumConfidence: Double = 0, limit: Int = .max) -> [Prediction] {
        []
    }

    public var statistics: PredictorStatistics {
        PredictorStatistics(totalAccesses: total, speakers: history.count, activePatterns: 0, historyEvents: history.values.reduce(0) { $0 + $1.count })
    }
}
