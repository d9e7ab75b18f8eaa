/// Learns per speaker when they are read and predicts who will be read soon.
///
/// Pure: driven only by the timestamps it is given (unix milliseconds), so a recorded or
/// generated trace replays in simulated time, and tests need neither clocks nor sleeps.
///
/// Three signals, each an estimate of when the speaker's next read comes and how sure that is:
///
/// - **interval**: the gaps between a speaker's recent reads inside a working session (gaps
///   up to 2.5× their median; overnight and lunch gaps are left out). A coefficient of
///   variation of at most 0.25 over at least 4 gaps makes the pattern regular: the next read
///   is expected one mean gap after the last, spread by the gaps' standard deviation. Whether
///   there *is* a next read depends on the time of day (people go home): the share of earlier
///   reads near the same time of day that were followed by another within the session gap.
/// - **routine**: the times of day at which sessions begin (a read after a pause) on earlier
///   days of the same kind (weekday or weekend), clustered; a cluster seen on at least 3 days
///   and on at least half of the days of its kind is a routine ("arrives about 08:40", "back
///   from lunch about 13:05"), expected today unless the speaker has been read since shortly
///   before it.
/// - **frequency**: a burst — four reads within five minutes — makes another likely soon:
///   Poisson on the burst's rate, times the share of the speaker's earlier bursts that went on.
///
/// Confidence is the probability that the speaker is read before the predicted access's likely
/// span ends (expected time + 2σ), given that they have not been read since their last access:
/// a pattern that held on 9 of 10 days and whose time has not yet passed gives about 0.9; as
/// the expected time passes without a read, the confidence falls. A speaker is predicted inside
/// the window when the expected time lies in `[now - 2σ, now + window]`.
public struct PrefetchPredictor: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Speakers tracked; beyond it the one seen least recently is forgotten.
        public var maxSpeakers: Int
        /// Access times kept per speaker (oldest dropped first).
        public var historyPerSpeaker: Int
        /// Offset of local time from UTC, for daily routines (seconds; DST is not followed).
        public var utcOffsetSeconds: Int

        public init(maxSpeakers: Int = 100_000, historyPerSpeaker: Int = 256, utcOffsetSeconds: Int = 0) {
            precondition(maxSpeakers > 0 && historyPerSpeaker >= 8)
            self.maxSpeakers = maxSpeakers
            self.historyPerSpeaker = historyPerSpeaker
            self.utcOffsetSeconds = utcOffsetSeconds
        }
    }

    public let configuration: Configuration
    var speakers: [String: SpeakerModel] = [:]
    var totalAccesses: UInt64 = 0
    var heldEvents = 0

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// Times the predictor takes: 1970 to about 2200 (unix ms). Others are ignored, so that no
    /// arithmetic on them can overflow.
    public static let validTimes: ClosedRange<Int64> = 0...7_258_118_400_000

    /// Reads of a speaker less than this after their latest recorded read are the same read
    /// to the predictor (a client retrying, an application verifying twice): its signals work
    /// in seconds to hours, and at thousands of reads a second per speaker (a benchmark, a
    /// runaway client) learning every one would cost more than the reads themselves.
    public static let sameReadMilliseconds: Int64 = 1000

    /// Records a read of `speaker` at `atMilliseconds` (unix ms) and returns whether it was
    /// learned. A time earlier than the speaker's latest is placed in order; the models are
    /// rebuilt from the kept history. Not learned: a time outside `validTimes`, and a read
    /// within `sameReadMilliseconds` after the speaker's latest.
    @discardableResult
    public mutating func record(_ speaker: String, atMilliseconds time: Int64) -> Bool {
        guard Self.validTimes.contains(time) else { return false }
        if let last = speakers[speaker]?.times.last, time >= last, time - last < Self.sameReadMilliseconds { return false }
        totalAccesses += 1
        let clock = DayClock(utcOffsetSeconds: configuration.utcOffsetSeconds)
        if speakers[speaker] == nil, speakers.count >= configuration.maxSpeakers { forgetLeastRecent() }
        var model = speakers.removeValue(forKey: speaker) ?? SpeakerModel()
        heldEvents -= model.times.count
        model.record(time, keep: configuration.historyPerSpeaker, clock: clock)
        heldEvents += model.times.count
        speakers[speaker] = model
        return true
    }

    /// The speakers expected inside `[now, now + window]` with at least `minimumConfidence`,
    /// highest confidence first (ties: earlier expected time, then id), at most `limit`.
    /// `now` outside `validTimes` or a window that is not positive (or longer than a year)
    /// predicts nothing.
    public func predictions(nowMilliseconds now: Int64, windowMilliseconds window: Int64, minimumConfidence: Double = 0, limit: Int = .max) -> [Prediction] {
        guard limit > 0, Self.validTimes.contains(now), (1...31_536_000_000).contains(window) else { return [] }
        let clock = DayClock(utcOffsetSeconds: configuration.utcOffsetSeconds)
        var found: [Prediction] = []
        for (speaker, model) in speakers {
            guard var best = model.predict(now: now, window: window, clock: clock), best.confidence >= minimumConfidence else { continue }
            best.speaker = speaker
            found.append(best)
        }
        found.sort {
            if $0.confidence != $1.confidence { return $0.confidence > $1.confidence }
            if $0.expectedAtMilliseconds != $1.expectedAtMilliseconds { return $0.expectedAtMilliseconds < $1.expectedAtMilliseconds }
            return $0.speaker < $1.speaker
        }
        if found.count > limit { found.removeLast(found.count - limit) }
        return found
    }

    public var statistics: PredictorStatistics {
        PredictorStatistics(
            totalAccesses: totalAccesses, speakers: speakers.count,
            activePatterns: speakers.values.reduce(0) { $0 + ($1.hasPattern ? 1 : 0) }, historyEvents: heldEvents)
    }

    /// Drops the 1 % of speakers (at least one) seen least recently, so that a stream of new
    /// speakers costs one scan per hundred of them rather than one each.
    private mutating func forgetLeastRecent() {
        let count = max(1, speakers.count / 100)
        let oldest = speakers.map { ($0.key, $0.value.times.last ?? .min) }.sorted { $0.1 < $1.1 }.prefix(count)
        for (speaker, _) in oldest {
            heldEvents -= speakers[speaker]?.times.count ?? 0
            speakers[speaker] = nil
        }
    }
}

/// Local days and times of day for routines.
struct DayClock: Sendable {
    static let day: Int64 = 86_400_000
    let offset: Int64

    init(utcOffsetSeconds: Int) { offset = Int64(utcOffsetSeconds) * 1000 }

    /// Days since 1970-01-01 in local time (floor, so times before 1970 work too).
    func day(_ time: Int64) -> Int64 {
        let local = time + offset
        return local >= 0 ? local / Self.day : (local - Self.day + 1) / Self.day
    }

    /// The instant local midnight of `day` is.
    func start(ofDay day: Int64) -> Int64 { day * Self.day - offset }

    /// Saturday or Sunday (1970-01-01 was a Thursday).
    func isWeekend(_ day: Int64) -> Bool {
        let weekday = ((day + 3) % 7 + 7) % 7  // 0 = Monday
        return weekday >= 5
    }

    /// Days of the same kind (weekday or weekend) as `kindOf` in `first..<end`.
    func days(like kindOf: Int64, from first: Int64, to end: Int64) -> Int {
        guard end > first else { return 0 }
        let weekend = isWeekend(kindOf)
        var count = 0
        var day = first
        // Whole weeks at once, then the rest one by one.
        let weeks = (end - first) / 7
        count += Int(weeks) * (weekend ? 2 : 5)
        day += weeks * 7
        while day < end {
            if isWeekend(day) == weekend { count += 1 }
            day += 1
        }
        return count
    }
}
