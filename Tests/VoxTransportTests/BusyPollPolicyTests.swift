import NIOCore
import Testing
@testable import VoxTransport

/// When an epoll client loop polls and when it sleeps, decided without a loop or a clock.
@Suite struct BusyPollPolicyTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func withoutAWindowALoopSleepsAtOnceUntilItsFirstTimer() {
        let policy = BusyPollPolicy(window: .zero)
        #expect(policy.nextWait(now: start, lastActive: start, firstTimer: nil) == .sleep(timeoutMilliseconds: -1))
        #expect(policy.nextWait(now: start, lastActive: start, firstTimer: start + .microseconds(2_500)) == .sleep(timeoutMilliseconds: 3),
                "rounded up: woken no earlier than the timer is due")
        #expect(policy.nextWait(now: start, lastActive: start, firstTimer: start + .milliseconds(7)) == .sleep(timeoutMilliseconds: 7))
        #expect(policy.nextWait(now: start, lastActive: start, firstTimer: start) == .poll, "a due timer is never slept on")
        #expect(policy.nextWait(now: start, lastActive: start, firstTimer: start - .milliseconds(1)) == .poll)
    }

    @Test func afterWorkALoopPollsForItsWindowThenSleeps() {
        let policy = BusyPollPolicy(window: .microseconds(200))
        #expect(policy.nextWait(now: start, lastActive: start, firstTimer: nil) == .poll)
        #expect(policy.nextWait(now: start + .microseconds(199), lastActive: start, firstTimer: nil) == .poll)
        #expect(policy.nextWait(now: start + .microseconds(200), lastActive: start, firstTimer: nil) == .sleep(timeoutMilliseconds: -1))
        #expect(policy.nextWait(now: start + .seconds(5), lastActive: start, firstTimer: nil) == .sleep(timeoutMilliseconds: -1),
                "an idle loop sleeps: polling follows work, not time")
        // New work starts a new window.
        let later = start + .seconds(5)
        #expect(policy.nextWait(now: later + .microseconds(10), lastActive: later, firstTimer: nil) == .poll)
    }

    @Test func aTimerNeitherWaitsForTheWindowNorExtendsIt() {
        let policy = BusyPollPolicy(window: .microseconds(200))
        // Polling already checks timers every round; a timer after the window is slept on.
        #expect(policy.nextWait(now: start + .microseconds(50), lastActive: start, firstTimer: start + .microseconds(40)) == .poll)
        #expect(policy.nextWait(now: start + .microseconds(300), lastActive: start, firstTimer: start + .microseconds(1_300)) == .sleep(timeoutMilliseconds: 1))
        #expect(policy.nextWait(now: start + .microseconds(300), lastActive: start, firstTimer: start + .seconds(3_600)) == .sleep(timeoutMilliseconds: 3_600_000))
    }

    @Test func aTimerFarAwayStillGivesAValidTimeout() {
        let policy = BusyPollPolicy(window: .zero)
        #expect(policy.nextWait(now: start, lastActive: start, firstTimer: .distantFuture) == .sleep(timeoutMilliseconds: .max),
                "clamped, not overflowed")
    }
}
