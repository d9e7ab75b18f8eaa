/// Why the predictor expects a speaker soon.
public enum PredictionReason: String, Sendable, CaseIterable, Codable {
    /// Many accesses lately: the speaker is in a burst of use.
    case frequency
    /// Accesses at a regular interval: the next one is due.
    case interval
    /// Accesses at similar times on earlier days of the same kind (weekday or weekend).
    case routine
}

/// One speaker the predictor expects to be read inside the look-ahead window.
public struct Prediction: Sendable, Equatable {
    public var speaker: String
    /// The estimated probability (0–1) that the speaker is read inside the window.
    public var confidence: Double
    /// When the access is expected (unix ms).
    public var expectedAtMilliseconds: Int64
    public var reason: PredictionReason

    public init(speaker: String, confidence: Double, expectedAtMilliseconds: Int64, reason: PredictionReason) {
        self.speaker = speaker
        self.confidence = confidence
        self.expectedAtMilliseconds = expectedAtMilliseconds
        self.reason = reason
    }
}

/// What the predictor holds, for `voxsync prefetch predictions`, metrics and the Redis value.
public struct PredictorStatistics: Sendable, Equatable {
    /// Accesses recorded since the predictor was made (history replayed at start included).
    public var totalAccesses: UInt64
    /// Speakers with history.
    public var speakers: Int
    /// Speakers for whom a pattern (interval or routine) was found.
    public var activePatterns: Int
    /// Access times held, all speakers together.
    public var historyEvents: Int

    public init(totalAccesses: UInt64 = 0, speakers: Int = 0, activePatterns: Int = 0, historyEvents: Int = 0) {
        self.totalAccesses = totalAccesses
        self.speakers = speakers
        self.activePatterns = activePatterns
        self.historyEvents = historyEvents
    }
}
