#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One read in a trace: when (unix ms) and whom.
public struct TraceAccess: Sendable, Equatable {
    public var time: Int64
    public var speaker: String

    public init(time: Int64, speaker: String) {
        self.time = time
        self.speaker = speaker
    }
}

/// A generated office: who unlocks when, over weeks, from a seed (the same trace every run).
///
/// - **Regulars** (`regularShare`): on weekdays they arrive at their own time (07:30–09:30)
///   with a daily jitter, unlock at their own interval (30–90 min, jittered) until they leave
///   8–9.5 h later; some take a lunch break (away 40–70 min from about 12:00–13:00). They are
///   away on `absence` of weekdays and come in on a weekend day now and then, unlocking at
///   random.
/// - **Irregulars** (`irregularShare`): a random number of unlocks (2–8) at random times on
///   weekdays, a tenth of that at weekends — nothing to learn but frequency.
/// - **Occasional** (the rest): about one unlock every five days.
/// - **Background** (`backgroundShare` of all reads): Zipf-distributed over every speaker at
///   random times between 07:00 and 21:00 — lookups by other systems, colleagues' devices.
/// - A read fails and is retried a few seconds later with probability `retry`.
///
/// Times are local with the week starting on Monday 2024-01-01 (UTC offset 0).
public struct OfficeWorkload: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var speakers: Int = 1000
        public var days: Int = 28
        public var seed: UInt64 = 42
        public var regularShare = 0.6
        public var irregularShare = 0.25
        public var backgroundShare = 0.15
        public var zipfExponent = 1.0
        /// Daily jitter (standard deviation) of arrival, lunch and leaving times, in minutes.
        public var routineJitterMinutes = 6.0
        /// Jitter of the unlock interval, as a share of the speaker's interval.
        public var intervalJitter = 0.08
        public var absence = 0.05
        public var retry = 0.1

        public init() {}
    }

    /// Monday 2024-01-01 00:00 UTC, in unix ms.
    public static let start: Int64 = 1_704_067_200_000
    static let minute = 60_000.0
    static let hour = 3_600_000.0
    static let day = 86_400_000.0

    public let configuration: Configuration

    public init(configuration: Configuration = .init()) {
        precondition(configuration.speakers > 0 && configuration.days > 0)
        self.configuration = configuration
    }

    public static func speakerName(_ index: Int) -> String {
        let digits = String(index)
        return "speaker-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }

    /// The trace, ordered by time.
    public func generate() -> [TraceAccess] {
        let c = configuration
        var rng = SeededGenerator(seed: c.seed)
        var reads: [(Double, Int)] = []
        let regulars = Int((Double(c.speakers) * c.regularShare).rounded())
        let irregulars = Int((Double(c.speakers) * c.irregularShare).rounded())

        for speaker in 0..<c.speakers {
            if speaker < regulars {
                let arrival = rng.uniform(7.5, 9.5) * Self.hour
                let stay = rng.uniform(8, 9.5) * Self.hour
                let interval = rng.uniform(30, 90) * Self.minute
                let lunch: (leave: Double, away: Double)? = rng.chance(0.4)
                    ? (rng.uniform(12, 13) * Self.hour, rng.uniform(40, 70) * Self.minute) : nil
                for day in 0..<c.days {
                    let midnight = Double(day) * Self.day
                    if Self.isWeekend(day) {
                        if rng.chance(0.05) { randomDay(&reads, &rng, speaker, midnight, count: Int(rng.uniform(3, 7)), from: 10, to: 16) }
                        continue
                    }
                    if rng.chance(c.absence) { continue }
                    let jitter = c.routineJitterMinutes * Self.minute
                    var time = midnight + rng.normal(arrival, jitter)
                    let leave = time + rng.normal(stay, jitter)
                    let lunchLeave = lunch.map { midnight + rng.normal($0.leave, jitter) }
                    var lunchTaken = false
                    while time < leave {
                        reads.append((time, speaker))
                        var next = time + max(Self.minute, rng.normal(interval, c.intervalJitter * interval))
                        if let lunch, let lunchLeave, !lunchTaken, next >= lunchLeave {
                            lunchTaken = true
                            next = lunchLeave + rng.normal(lunch.away, jitter)
                        }
                        time = next
                    }
                }
            } else if speaker < regulars + irregulars {
                let perDay = rng.uniform(2, 8)
                for day in 0..<c.days {
                    let mean = Self.isWeekend(day) ? perDay / 10 : perDay
                    randomDay(&reads, &rng, speaker, Double(day) * Self.day, count: poisson(mean, &rng), from: 8, to: 18)
                }
            } else {
                for day in 0..<c.days where rng.chance(0.2) {
                    randomDay(&reads, &rng, speaker, Double(day) * Self.day, count: 1, from: 8, to: 20)
                }
            }
        }

        // Background: Zipf over a shuffled ranking of every speaker.
        let background = Int(Double(reads.count) * c.backgroundShare / (1 - c.backgroundShare))
        var ranking = Array(0..<c.speakers)
        ranking.shuffle(using: &rng)
        var cumulative: [Double] = []
        cumulative.reserveCapacity(c.speakers)
        var total = 0.0
        for rank in 1...c.speakers {
            total += 1 / pow(Double(rank), c.zipfExponent)
            cumulative.append(total)
        }
        for _ in 0..<background {
            let pick = rng.unit() * total
            var low = 0, high = cumulative.count - 1
            while low < high {
                let middle = (low + high) / 2
                if cumulative[middle] < pick { low = middle + 1 } else { high = middle }
            }
            let day = Int(rng.unit() * Double(c.days))
            if Self.isWeekend(day), !rng.chance(0.3) { continue }
            reads.append((Double(day) * Self.day + rng.uniform(7, 21) * Self.hour, ranking[low]))
        }

        // Failed first attempts, read again a few seconds later.
        let count = reads.count
        for index in 0..<count where rng.chance(c.retry) {
            reads.append((reads[index].0 + rng.uniform(2_000, 10_000), reads[index].1))
        }

        reads.sort { $0.0 < $1.0 }
        let names = (0..<c.speakers).map(Self.speakerName)
        return reads.map { TraceAccess(time: Self.start + Int64($0.0), speaker: names[$0.1]) }
    }

    /// `count` reads at uniform times between the hours `from` and `to` of the day.
    private func randomDay(_ reads: inout [(Double, Int)], _ rng: inout SeededGenerator, _ speaker: Int, _ midnight: Double, count: Int, from: Double, to: Double) {
        for _ in 0..<max(0, count) { reads.append((midnight + rng.uniform(from, to) * Self.hour, speaker)) }
    }

    private func poisson(_ mean: Double, _ rng: inout SeededGenerator) -> Int {
        let limit = exp(-mean)
        var product = rng.unit(), count = 0
        while product > limit {
            count += 1
            product *= rng.unit()
        }
        return count
    }

    /// Days 5 and 6 of each week (the trace starts on a Monday).
    static func isWeekend(_ day: Int) -> Bool { day % 7 >= 5 }
}
