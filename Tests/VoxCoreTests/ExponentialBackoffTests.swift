import Testing
import VoxCore

@Suite struct ExponentialBackoffTests {
    let backoff = ExponentialBackoff(initial: .milliseconds(10), maximum: .seconds(1), multiplier: 2, jitter: 0.5)

    @Test func growsByTheMultiplierUntilTheCap() {
        let exact = ExponentialBackoff(initial: .milliseconds(10), maximum: .seconds(1), multiplier: 2, jitter: 0)
        #expect(exact.delay(attempt: 0, random: 0.3) == .milliseconds(10))
        #expect(exact.delay(attempt: 1, random: 0.3) == .milliseconds(20))
        #expect(exact.delay(attempt: 3, random: 0.3) == .milliseconds(80))
        #expect(exact.delay(attempt: 7, random: 0.3) == .seconds(1))
        #expect(exact.delay(attempt: 10_000, random: 0.3) == .seconds(1))
    }

    @Test func jitterStaysWithinItsFraction() {
        // random 0 gives the low end (half), random just under 1 the nominal delay.
        #expect(backoff.delay(attempt: 2, random: 0) == .milliseconds(20))
        #expect(backoff.delay(attempt: 2, random: 1) == .milliseconds(40))
        for step in 0..<100 {
            let delay = backoff.delay(attempt: 4, random: Double(step) / 100)
            #expect(delay >= .milliseconds(80) && delay <= .milliseconds(160))
        }
    }

    @Test func outOfRangeDrawsAreClamped() {
        #expect(backoff.delay(attempt: 0, random: -5) == .milliseconds(5))
        #expect(backoff.delay(attempt: 0, random: 7) == .milliseconds(10))
        #expect(backoff.delay(attempt: -3, random: 1) == .milliseconds(10))
    }
}
