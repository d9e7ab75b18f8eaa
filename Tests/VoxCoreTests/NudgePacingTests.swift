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

    /// A timer that runs late finds that a commit nudged meanwhile: what is owed then waits
    /// out that nudge's interval instead of following it at once.
    @Test func aLateTimerKeepsNudgesAnIntervalApart() {
        var pacing = Pacing(interval: .milliseconds(5))
        #expect(pacing.committed(at: ms(0)) == .nudge)
        #expect(pacing.committed(at: ms(1)) == .armTimer(.milliseconds(4)))
        #expect(pacing.committed(at: ms(10)) == .nudge, "the timer is late; this commit is 10 ms after the last nudge")
        #expect(pacing.committed(at: ms(11)) == .none, "owed; the late timer is still armed")
        #expect(pacing.timerFired(at: ms(12)) == .armTimer(.milliseconds(3)), "2 ms after the last nudge: wait out the rest")
        #expect(pacing.timerFired(at: ms(15)) == .nudge)
    }

    /// Whatever the order of commits and timers, and however late the timers run: nudges are
    /// at least an interval apart, every commit is followed by a nudge, and with timers on
    /// time no commit waits more than an interval for it.
    @Test func everyCommitIsCoveredAndNudgesKeepTheirDistance() {
        func scattered(_ n: Int, below bound: Int) -> Int { Int(((UInt64(n) &* 0x9E37_79B9_7F4A_7C15) >> 40) % UInt64(bound)) }
        for run in 0..<200 {
            let lateBy = run % 2 == 0 ? 0 : 3000  // µs: odd runs' timers fire up to 3 ms late
            var pacing = Pacing(interval: .milliseconds(5))
            var now = 0
            var timerAt: Int?
            var nudges: [Int] = []
            var uncovered: Int?  // the earliest commit no nudge has followed yet
            func fireDueTimers(until time: Int) {
                while let at = timerAt, at <= time {
                    timerAt = nil
                    switch pacing.timerFired(at: us(at)) {
                    case .nudge:
                        if let first = uncovered, lateBy == 0 { #expect(at - first <= 5000, "commit at \(first) µs, nudge at \(at) µs") }
                        nudges.append(at)
                        uncovered = nil
                    case .armTimer(let after): timerAt = at + Int(after / .microseconds(1)) + scattered(at, below: lateBy + 1)
                    case .none: #expect(uncovered == nil, "a timer found nothing owed, but the commit at \(uncovered ?? 0) µs was not followed by a nudge")
                    }
                }
            }
            for step in 0..<100 {
                // Gaps of 0–4 ms (µs), scattered by a multiplicative hash: bursts and pauses.
                now += scattered(run * 100 + step, below: 4000)
                fireDueTimers(until: now)
                switch pacing.committed(at: us(now)) {
                case .nudge:
                    nudges.append(now)
                    uncovered = nil
                case .armTimer(let after):
                    #expect(timerAt == nil, "one timer at a time")
                    timerAt = now + Int(after / .microseconds(1)) + scattered(now, below: lateBy + 1)
                    uncovered = uncovered ?? now
                case .none:
                    uncovered = uncovered ?? now
                }
                if let first = uncovered { #expect(timerAt != nil, "commit at \(first) µs left without a nudge or a timer") }
            }
            fireDueTimers(until: .max)
            #expect(uncovered == nil && timerAt == nil, "run \(run): the last commits were followed by a nudge")
            for (a, b) in zip(nudges, nudges.dropFirst()) { #expect(b - a >= 5000, "nudges at \(a) and \(b) µs") }
        }
    }

    @Test func aZeroIntervalNudgesAfterEveryCommit() {
        var pacing = Pacing(interval: .zero)
        for t in [0, 0, 1, 1, 2] { #expect(pacing.committed(at: ms(t)) == .nudge) }
    }
}
