#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the predictor knows of one speaker: the kept access times and the patterns found in
/// them, rebuilt when a read is recorded (the interval pattern on every read, the routines on
/// the first read of a new day), so that a prediction costs a few arithmetic operations.
struct SpeakerModel: Sendable {
    /// Access times, ascending, at most the configured history.
    var times: [Int64] = []
    var interval: IntervalPattern?
    /// How often a burst (four reads within `burstSpan`) went on with another read within
    /// the span: Laplace-smoothed, 0.5 with no bursts seen.
    var burstContinuation = 0.5
    var routines: [RoutineCluster] = []
    /// The local day the routines were built for (they use only earlier days).
    var routinesBuiltFor: Int64 = .min
    /// The first local day of the kept history: routines are measured against the days since.
    var firstDay: Int64 = 0

    var hasPattern: Bool { interval != nil || !routines.isEmpty }

    static let minute: Int64 = 60_000
    static let hour: Int64 = 3_600_000
    /// Four reads within this are a burst.
    static let burstSpan: Int64 = 5 * minute

    mutating func record(_ time: Int64, keep: Int, clock: DayClock) {
        if let last = times.last, time < last {
            let index = times.firstIndex { $0 > time } ?? times.endIndex
            times.insert(time, at: index)
        } else {
            times.append(time)
        }
        if times.count > keep { times.removeFirst(times.count - keep) }
        firstDay = clock.day(times[0])
        let today = clock.day(times[times.count - 1])
        let gaps = IntervalPattern.recentGaps(times)
        let median = gaps.isEmpty ? 0 : gaps.sorted()[gaps.count / 2]
        interval = IntervalPattern(times, gaps: gaps, median: median, clock: clock)
        burstContinuation = Self.burstContinuation(times)
        if today != routinesBuiltFor {
            // A session begins after a pause of 2.5 median gaps, regular or not, but at least
            // 30 minutes and at most 4 hours (a night always ends one, even for a speaker read
            // once a day): what is left is arriving in the morning, coming back from lunch.
            let pause = min(Double(4 * Self.hour), max(Double(30 * Self.minute), 2.5 * median))
            routines = RoutineCluster.find(in: times, before: today, pause: pause, clock: clock)
            routinesBuiltFor = today
        }
    }

    /// The best of the interval, routine and frequency estimates that falls inside the window.
    func predict(now: Int64, window: Int64, clock: DayClock) -> Prediction? {
        guard let last = times.last else { return nil }
        var best: Prediction?
        func consider(_ confidence: Double, _ expected: Double, _ reason: PredictionReason) {
            guard confidence > 0, confidence > (best?.confidence ?? 0) else { return }
            best = Prediction(speaker: "", confidence: min(1, confidence), expectedAtMilliseconds: Int64(expected.rounded()), reason: reason)
        }
        let nowD = Double(now)
        let windowEnd = nowD + Double(window)

        if let interval, last <= now {
            let expected = Double(last) + interval.mean
            if expected <= windowEnd, expected + 2 * interval.deviation >= nowD {
                consider(Self.confidence(happens: interval.continuation, expected: expected, deviation: interval.deviation, now: nowD), expected, .interval)
            }
        }

        if !routines.isEmpty {
            let today = clock.day(now)
            let observed = clock.days(like: today, from: firstDay, to: today)
            if observed >= RoutineCluster.minimumDays {
                let midnight = Double(clock.start(ofDay: today))
                for routine in routines where routine.weekend == clock.isWeekend(today) {
                    let expected = midnight + routine.mean
                    guard expected <= windowEnd, expected + 2 * routine.deviation >= nowD else { continue }
                    // Read since shortly before the routine's time: today's instance happened.
                    guard Double(last) < expected - 3 * routine.deviation - 10 * Double(Self.minute) else { continue }
                    let support = min(1, Double(routine.days) / Double(observed))
                    // A routine holds while it was seen on at least half of the days of its kind.
                    guard support >= RoutineCluster.minimumSupport else { continue }
                    consider(Self.confidence(happens: support, expected: expected, deviation: routine.deviation, now: nowD), expected, .routine)
                }
            }
        }

        // A burst: four reads within five minutes. Poisson on the burst's rate, times how often
        // this speaker's bursts went on, while it has not gone quiet for two of its mean gaps.
        if times.count >= 4, last <= now {
            let span = Double(last - times[times.count - 4])
            if span <= Double(Self.burstSpan) {
                let rate = 3 / max(span, 1000)
                let quiet = Double(now - last)
                if quiet * rate <= 2 {
                    consider(burstContinuation * (1 - exp(-rate * Double(window))), max(nowD, Double(last) + 1 / rate), .frequency)
                }
            }
        }
        return best
    }

    /// The share of this speaker's bursts (a read that is the fourth within `burstSpan`)
    /// followed by another read within the span, smoothed: (continued + 1) / (bursts + 2).
    static func burstContinuation(_ times: [Int64]) -> Double {
        guard times.count >= 5 else { return 0.5 }
        var bursts = 0.0, continued = 0.0
        for index in 3..<(times.count - 1) where times[index] - times[index - 3] <= burstSpan {
            bursts += 1
            if times[index + 1] - times[index] <= burstSpan { continued += 1 }
        }
        return (continued + 1) / (bursts + 2)
    }

    /// P(read by expected + 2σ | not read by now) for a read that happens at all with
    /// probability `happens`, at a normally distributed time.
    static func confidence(happens: Double, expected: Double, deviation: Double, now: Double) -> Double {
        let before = normalCDF((now - expected) / deviation)
        let by = normalCDF(2)
        guard before < by else { return 0 }
        return happens * (by - before) / (1 - happens * before)
    }

    /// Φ(z), the standard normal distribution function.
    static func normalCDF(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }
}

/// Reads at a regular interval inside working sessions.
struct IntervalPattern: Sendable, Equatable {
    /// Mean and standard deviation of the in-session gaps (ms).
    var mean: Double
    var deviation: Double
    /// A gap longer than this ends a session (2.5× the median gap).
    var sessionGap: Double
    /// Probability that the last read is followed by another within the session, from earlier
    /// reads near the same time of day (people go home), smoothed towards the overall share.
    var continuation: Double

    static let gapsUsed = 16
    static let minimumGaps = 4
    static let maximumVariation = 0.25

    /// The gaps between the last `gapsUsed + 1` reads.
    static func recentGaps(_ times: [Int64]) -> [Double] {
        let recent = times.suffix(gapsUsed + 1)
        return zip(recent, recent.dropFirst()).map { Double($1 - $0) }
    }

    init?(_ times: [Int64], gaps: [Double], median: Double, clock: DayClock) {
        guard gaps.count >= Self.minimumGaps, median > 0 else { return nil }
        // In-session gaps: not the pauses (> 2.5× median), not double reads (< 0.4× median).
        let kept = gaps.filter { $0 <= 2.5 * median && $0 >= 0.4 * median }
        guard kept.count >= Self.minimumGaps else { return nil }
        let mean = kept.reduce(0, +) / Double(kept.count)
        let variance = kept.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(kept.count - 1)
        let deviation = variance.squareRoot()
        guard deviation <= Self.maximumVariation * mean else { return nil }
        self.mean = mean
        self.deviation = max(deviation, 0.02 * mean, 1000)
        self.sessionGap = 2.5 * median

        // Continuation by time of day: earlier reads within 45 minutes of the last one's time of
        // day, on days of the same kind; each either followed by a read within the session gap
        // or not.
        let last = times[times.count - 1]
        let lastDay = clock.day(last)
        let lastTime = last - clock.start(ofDay: lastDay)
        let weekend = clock.isWeekend(lastDay)
        var followed = 0.0, near = 0.0, followedAll = 0.0
        for index in 0..<(times.count - 1) {
            let continues = Double(times[index + 1] - times[index]) <= sessionGap
            if continues { followedAll += 1 }
            let day = clock.day(times[index])
            guard clock.isWeekend(day) == weekend else { continue }
            let timeOfDay = times[index] - clock.start(ofDay: day)
            if abs(timeOfDay - lastTime) <= 45 * SpeakerModel.minute {
                near += 1
                if continues { followed += 1 }
            }
        }
        let overall = followedAll / Double(times.count - 1)
        self.continuation = (followed + 2 * overall) / (near + 2)
    }
}

/// A time of day at which the speaker's sessions begin on most days of one kind.
struct RoutineCluster: Sendable, Equatable {
    var weekend: Bool
    /// Mean and standard deviation of the time of day (ms after local midnight).
    var mean: Double
    var deviation: Double
    /// Distinct days the routine was seen on.
    var days: Int

    static let minimumDays = 3
    static let minimumSupport = 0.5
    /// Session starts further apart than this (in time of day) are different routines.
    static let split: Int64 = 20 * 60_000
    static let maximumDeviation = 30.0 * 60_000

    /// Clusters of session starts (a read after `pause` without one) before `today`.
    static func find(in times: [Int64], before today: Int64, pause: Double, clock: DayClock) -> [RoutineCluster] {
        var starts: [(weekend: Bool, day: Int64, time: Int64)] = []
        for index in times.indices {
            let day = clock.day(times[index])
            guard day < today else { break }
            if index == 0 || Double(times[index] - times[index - 1]) >= pause {
                starts.append((clock.isWeekend(day), day, times[index] - clock.start(ofDay: day)))
            }
        }
        var found: [RoutineCluster] = []
        for weekend in [false, true] {
            let kind = starts.filter { $0.weekend == weekend }.sorted { $0.time < $1.time }
            var group: ArraySlice<(weekend: Bool, day: Int64, time: Int64)> = []
            func close() {
                let days = Set(group.map(\.day)).count
                guard days >= minimumDays else { return }
                let mean = group.reduce(0.0) { $0 + Double($1.time) } / Double(group.count)
                let variance = group.reduce(0.0) { $0 + (Double($1.time) - mean) * (Double($1.time) - mean) } / Double(max(1, group.count - 1))
                let deviation = max(variance.squareRoot(), 60_000)
                guard deviation <= maximumDeviation else { return }
                found.append(RoutineCluster(weekend: weekend, mean: mean, deviation: deviation, days: days))
            }
            var start = 0
            for index in kind.indices {
                if index > start, kind[index].time - kind[index - 1].time > split {
                    group = kind[start..<index]
                    close()
                    start = index
                }
            }
            if start < kind.count {
                group = kind[start...]
                close()
            }
        }
        return found
    }
}
