/// What the chaos task does and when: SIGKILLs and SIGSTOPs of workers, and outages of
/// PostgreSQL and Redis, as offsets from the start of the run.
///
/// Victims are drawn in rounds: each round is a shuffled list of every targeted role, so over
/// a run every worker is hit about as often as every other (with n kills and r roles, each gets
/// n / r rounded down at least) while the order stays unpredictable. Times fall at a random
/// point in the first half of each interval, so two kinds of action rarely line up.
public struct ChaosSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, Hashable, CaseIterable {
        /// SIGKILL: the worker dies at once.
        case kill
        /// SIGSTOP: the worker hangs until the supervisor's heartbeat timeout kills it.
        case stop
    }

    public struct Event: Sendable, Equatable {
        public var at: Duration
        public var role: String
        public var kind: Kind

        public init(at: Duration, role: String, kind: Kind) {
            self.at = at
            self.role = role
            self.kind = kind
        }
    }

    /// One outage of an external server: stopped at `at`, started again `downFor` later.
    public struct Outage: Sendable, Equatable {
        public var at: Duration
        public var downFor: Duration

        public init(at: Duration, downFor: Duration) {
            self.at = at
            self.downFor = downFor
        }
    }

    /// Worker signals in time order.
    public var events: [Event]
    public var postgresOutages: [Outage]
    public var redisOutages: [Outage]

    public init(events: [Event], postgresOutages: [Outage] = [], redisOutages: [Outage] = []) {
        self.events = events
        self.postgresOutages = postgresOutages
        self.redisOutages = redisOutages
    }

    /// The schedule of a run of `duration`: kills every `kill.interval`, stops every
    /// `stop.interval`, each drawn from `roles`; `postgresBounces` and `redisBounces` outages
    /// of `downFor` each, spread evenly (PostgreSQL's and Redis's interleaved).
    public static func make(
        duration: Duration, roles: [String], kill: ChaosRate, stop: ChaosRate,
        postgresBounces: Int, redisBounces: Int, downFor: Duration, seed: UInt64
    ) -> ChaosSchedule {
        var random = SplitMix64(seed: seed)
        var events: [Event] = []
        for (kind, rate) in [(Kind.kill, kill), (.stop, stop)] {
            guard let interval = rate.interval, !roles.isEmpty else { continue }
            var round: [String] = []
            var slot = 0
            while true {
                let base = interval * slot
                guard base < duration else { break }
                let at = base + min(interval, duration - base) * (random.unit() / 2)
                if round.isEmpty { round = roles.shuffled(using: &random) }
                events.append(Event(at: at, role: round.removeFirst(), kind: kind))
                slot += 1
            }
        }
        events.sort { ($0.at, $0.kind == .kill ? 0 : 1) < ($1.at, $1.kind == .kill ? 0 : 1) }
        // Outages: 2n+... evenly spaced centres; PostgreSQL takes the odd slots, Redis the even.
        let total = postgresBounces + redisBounces
        var centres: [Duration] = (0..<total).map { duration * (Double($0 + 1) / Double(total + 1)) }
        var postgres: [Outage] = []
        var redis: [Outage] = []
        var turn = 0
        while !centres.isEmpty {
            let centre = centres.removeFirst()
            let start = max(.zero, centre - downFor / 2)
            let postgresTurn = (turn % 2 == 0 && postgres.count < postgresBounces) || redis.count >= redisBounces
            if postgresTurn { postgres.append(Outage(at: start, downFor: downFor)) } else { redis.append(Outage(at: start, downFor: downFor)) }
            turn += 1
        }
        return ChaosSchedule(events: events, postgresOutages: postgres, redisOutages: redis)
    }

    /// Planned events per role and kind.
    public func count(role: String, kind: Kind) -> Int {
        events.filter { $0.role == role && $0.kind == kind }.count
    }
}
