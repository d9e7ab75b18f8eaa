/// The sync worker's circuit breaker in front of PostgreSQL.
///
/// Closed: calls go through; `failureThreshold` consecutive transient failures open it — a count,
/// not a rate, so it opens at low traffic too (one write a minute against a dead server still
/// opens it after three tries). Open: calls are refused until the break ends. Half-open: up to
/// `halfOpenProbes` calls go through as probes; a success closes the breaker, a failure opens
/// it again for a longer break (doubling up to `maximumBreak`) while the failures go on. The
/// break shrinks back to `initialBreak` once the breaker closes.
///
/// A pure value: time comes in as the `now` of each call. Every state change is returned as a
/// `Transition` for the caller to log and export.
public struct CircuitBreaker<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration, Instant: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Consecutive failures that open a closed breaker. Default 3.
        public var failureThreshold: Int
        /// First break. Default 1 s.
        public var initialBreak: Duration
        /// Longest break. Default 60 s.
        public var maximumBreak: Duration
        /// Calls let through at once while half-open. Default 1.
        public var halfOpenProbes: Int

        public init(failureThreshold: Int = 3, initialBreak: Duration = .seconds(1), maximumBreak: Duration = .seconds(60), halfOpenProbes: Int = 1) {
            precondition(failureThreshold >= 1 && halfOpenProbes >= 1, "a breaker needs failureThreshold >= 1 and halfOpenProbes >= 1")
            precondition(initialBreak > .zero && maximumBreak >= initialBreak, "a breaker needs 0 < initialBreak <= maximumBreak")
            self.failureThreshold = failureThreshold
            self.initialBreak = initialBreak
            self.maximumBreak = maximumBreak
            self.halfOpenProbes = halfOpenProbes
        }
    }

    public enum State: Equatable, Sendable {
        case closed(consecutiveFailures: Int)
        case open(until: Instant)
        case halfOpen(probesInFlight: Int)
    }

    /// The exported value of `<ns>_circuit_state`: 0 closed, 1 open, 2 half-open (the original
    /// system's encoding, which its alert rules use).
    public enum Phase: Int, Sendable, CustomStringConvertible {
        case closed = 0
        case open = 1
        case halfOpen = 2

        public var description: String {
            switch self {
            case .closed: "closed"
            case .open: "open"
            case .halfOpen: "half-open"
            }
        }
    }

    public struct Transition: Equatable, Sendable, CustomStringConvertible {
        public var from: Phase
        public var to: Phase
        /// The break that starts, when `to` is `.open`.
        public var breakDuration: Duration?

        public init(from: Phase, to: Phase, breakDuration: Duration? = nil) {
            self.from = from
            self.to = to
            self.breakDuration = breakDuration
        }

        public var description: String {
            if let breakDuration { return "circuit \(from) -> \(to) for \(breakDuration.seconds) s" }
            return "circuit \(from) -> \(to)"
        }
    }

    public enum Permission: Equatable, Sendable {
        /// Go ahead; report the outcome with `recordSuccess` or `recordFailure`.
        case allowed
        /// Refused; ask again at `retryAt` (or when a probe in flight finishes).
        case refused(retryAt: Instant?)
    }

    public let configuration: Configuration
    public private(set) var state: State = .closed(consecutiveFailures: 0)
    /// The break the next opening will last.
    public private(set) var nextBreak: Duration
    /// Times the breaker opened.
    public private(set) var openings = 0

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        self.nextBreak = configuration.initialBreak
    }

    public var phase: Phase {
        switch state {
        case .closed: .closed
        case .open: .open
        case .halfOpen: .halfOpen
        }
    }

    /// Asks to make a call at `now`. An open breaker whose break is over becomes half-open here.
    public mutating func acquire(now: Instant) -> (Permission, Transition?) {
        switch state {
        case .closed:
            return (.allowed, nil)
        case .open(let until):
            guard now >= until else { return (.refused(retryAt: until), nil) }
            state = .halfOpen(probesInFlight: 1)
            return (.allowed, Transition(from: .open, to: .halfOpen))
        case .halfOpen(let probes):
            guard probes < configuration.halfOpenProbes else { return (.refused(retryAt: nil), nil) }
            state = .halfOpen(probesInFlight: probes + 1)
            return (.allowed, nil)
        }
    }

    /// An allowed call succeeded.
    public mutating func recordSuccess(now: Instant) -> Transition? {
        switch state {
        case .closed:
            state = .closed(consecutiveFailures: 0)
            return nil
        case .halfOpen:
            state = .closed(consecutiveFailures: 0)
            nextBreak = configuration.initialBreak
            return Transition(from: .halfOpen, to: .closed)
        case .open:
            // A call allowed before the breaker opened finished late; it proves nothing about now.
            return nil
        }
    }

    /// An allowed call failed transiently (no connection, timeout, server restarting). Failures
    /// of one row that the server refuses for good are not the breaker's business.
    public mutating func recordFailure(now: Instant) -> Transition? {
        switch state {
        case .closed(let failures):
            guard failures + 1 >= configuration.failureThreshold else {
                state = .closed(consecutiveFailures: failures + 1)
                return nil
            }
            return open(from: .closed, now: now)
        case .halfOpen:
            return open(from: .halfOpen, now: now)
        case .open:
            return nil
        }
    }

    private mutating func open(from phase: Phase, now: Instant) -> Transition {
        let duration = nextBreak
        state = .open(until: now.advanced(by: duration))
        openings += 1
        let doubled = duration * 2
        nextBreak = doubled < configuration.maximumBreak ? doubled : configuration.maximumBreak
        return Transition(from: phase, to: .open, breakDuration: duration)
    }
}
