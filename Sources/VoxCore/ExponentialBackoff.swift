/// Exponential backoff with jitter, as a pure function of the attempt number and a random draw.
///
/// Used by the client's reconnect loop, and by every later retry schedule (supervisor
/// restarts, sync retries), so that all of them can be tested without sleeping: the caller
/// supplies the randomness.
public struct ExponentialBackoff: Sendable, Equatable {
    /// Delay before the first retry (attempt 0), before jitter.
    public var initial: Duration
    /// No delay is ever longer than this.
    public var maximum: Duration
    /// Growth per attempt; 2 doubles the delay each time.
    public var multiplier: Double
    /// Fraction of the delay that is randomised: 0 gives exact delays, 0.5 gives delays between
    /// half and all of the nominal one. Jitter keeps many clients from retrying in lockstep.
    public var jitter: Double

    public init(initial: Duration, maximum: Duration, multiplier: Double = 2, jitter: Double = 0.5) {
        precondition(initial > .zero && maximum >= initial, "backoff needs 0 < initial <= maximum")
        precondition(multiplier >= 1 && (0...1).contains(jitter), "backoff needs multiplier >= 1, jitter in 0...1")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The delay before retry number `attempt` (0-based), given a uniform draw in `0..<1`.
    public func delay(attempt: Int, random: Double) -> Duration {
        let initialSeconds = initial.seconds
        let cap = maximum.seconds
        // Computing multiplier^attempt directly overflows to inf for large attempts; min() with
        // the cap keeps the result finite.
        let nominal = min(cap, initialSeconds * pow(multiplier, Double(max(0, attempt))))
        let factor = 1 - jitter + jitter * min(max(random, 0), 1)
        return .nanoseconds(Int64((nominal * factor * 1e9).rounded()))
    }
}

extension Duration {
    /// The duration in seconds as a floating-point number.
    public var seconds: Double {
        let parts = self.components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }
}

#if canImport(Glibc)
import func Glibc.pow
#elseif canImport(Darwin)
import func Darwin.pow
#endif
