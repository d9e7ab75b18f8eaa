import Testing
import VoxCore

/// The outbox nudges' pacing, driven by a test clock: at once after a quiet spell, then at
/// most one per interval, and never a commit left without a nudge after it.
@Suite struct NudgePacingTests {
    typealias Pacing = NudgePacing<ContinuousClock.Instant>
    let start = ContinuousClock.now
    func ms(_ value: Int) -> ContinuousClock.Instant { start + .milliseconds(value) }
    func us(_ value: Int) -> ContinuousClock.Instant { start + .microseconds(value) }

    @Test func aCommitAfterAQuietSpellNudgesAtOnce() {
        var pacing = Pacing(interval: .milliseconds(5))
        #expect(pacing.committed(at: ms(0)) == .nudge)
        #expect(pacing.committed(at: ms(5)) == .nudge, "a whole interval later")
        #expect(pacing.committed(at: ms(100)) == .nudge)
    }

    @Test func aBurstNudgesOncePerIntervalAndOnceAfterItsLastCommit() {
        var pacing = Pacing(interval: .milliseconds(5))
        #expect(pacing.committed(at: ms(0)) == .nudge)
        #expect(pacing.committed(at: ms(1)) == .armTimer(.milliseconds(4)))
        #expect(pacing.committed(at: ms(2)) == .none, "one timer at a time")
        #expect(pacing.committed(at: ms(4)) == .none)
        #expect(pacing.timerFired(at: ms(5)) == .nudge, "owed since 1 ms")
        #expect(pacing.committed(at: ms(6)) == .armTimer(.milliseconds(4)))
        #expect(pacing.timerFired(at: ms(10)) == .nudge)
        #expect(pacing.timerFired(at: ms(20)) == .none, "nothing owed, no timer")
        #expect(pacing.committed(at: ms(20)) == .nudge, "quiet for 10 ms")
    }

    /// Whatever the order of commits and timers, every commit is followed by a nudge no more
    /// than an interval later, and nudges are at least an interval apart.
    @Test func everyCommitIsCoveredWithinAnIntervalAndNudgesKeepTheirDistance() {
        for run in 0..<200 {
            var pacing = Pacing(interval: .milliseconds(5))
            var now = 0
            var timerAt: Int?
            var nudges: [Int] = []
            var uncovered: Int?  // the earliest commit no nudge has followed yet
            for step in 0..<100 {
                // Gaps of 0–4 ms (µs), scattered by a multiplicative hash: bursts and pauses.
                now += Int(((UInt64(run * 100 + step) &* 0x9E37_79B9_7F4A_7C15) >> 40) % 4000)
                if let at = timerAt, at <= now {
                    timerAt = nil
                    let action = pacing.timerFired(at: us(at))
                    if let first = uncovered { #expect(action == .nudge && at - first <= 5000, "commit at \(first) µs, timer at \(at) µs") }
                    if action == .nudge { nudges.append(at); uncovered = nil }
                }
                switch pacing.committed(at: us(now)) {
                case .nudge: nudges.append(now); uncovered = nil
                case .armTimer(let after):
                    #expect(timerAt == nil)
                    timerAt = now + Int(after / .microseconds(1))
                    uncovered = uncovered ?? now
                case .none: uncovered = uncovered ?? now
                }
                if let first = uncovered { #expect(timerAt != nil, "commit at \(first) µs left without a nudge or a timer") }
            }
            for (a, b) in zip(nudges, nudges.dropFirst()) { #expect(b - a >= 5000, "nudges at \(a) and \(b) µs") }
        }
    }

    @Test func aZeroIntervalNudgesAfterEveryCommit() {
        var pacing = Pacing(interval: .zero)
        for t in [0, 0, 1, 1, 2] { #expect(pacing.committed(at: ms(t)) == .nudge) }
    }
}
