import NIOCore
import Testing
@testable import VoxTransport

/// When an epoll client loop polls and when it sleeps, decided without a loop or a clock.
@Suite struct BusyPollPolicyTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func withoutAWindowALoopSleepsAtOnceUntilItsFirstTimer() {
        var policy = BusyPollPolicy(window: .zero, start: start)
        policy.workArrived(at: start, events: 1)
        #expect(policy.nextWait(now: start, firstTimer: nil) == .sleep(timeoutMilliseconds: -1))
        #expect(policy.nextWait(now: start, firstTimer: start + .microseconds(2_500)) == .sleep(timeoutMilliseconds: 3),
                "rounded up: woken no earlier than the timer is due")
        #expect(policy.nextWait(now: start, firstTimer: start + .milliseconds(7)) == .sleep(timeoutMilliseconds: 7))
        #expect(policy.nextWait(now: start, firstTimer: start) == .sleep(timeoutMilliseconds: 0), "a due timer is never slept on")
        #expect(policy.nextWait(now: start, firstTimer: start - .milliseconds(1)) == .sleep(timeoutMilliseconds: 0))
    }

    @Test func afterWorkALoopPollsForItsWindowThenSleeps() {
        var policy = BusyPollPolicy(window: .microseconds(200), start: start)
        #expect(policy.nextWait(now: start, firstTimer: nil) == .poll)
        policy.yielded(took: .microseconds(1))  // nobody else wanted the CPU
        #expect(policy.nextWait(now: start + .microseconds(199), firstTimer: nil) == .poll)
        #expect(policy.nextWait(now: start + .microseconds(200), firstTimer: nil) == .sleep(timeoutMilliseconds: -1))
        #expect(policy.nextWait(now: start + .seconds(5), firstTimer: nil) == .sleep(timeoutMilliseconds: -1),
                "an idle loop sleeps: polling follows work, not time")
        // New work starts a new window.
        let later = start + .seconds(5)
        policy.workArrived(at: later, events: 1)
        #expect(policy.nextWait(now: later + .microseconds(10), firstTimer: nil) == .poll)
    }

    @Test func aLoopStopsPollingWhenAnotherThreadWantsItsCPUUntilItsNextWork() {
        var policy = BusyPollPolicy(window: .microseconds(200), contention: .microseconds(20), start: start)
        policy.yielded(took: .microseconds(19))
        #expect(policy.nextWait(now: start + .microseconds(30), firstTimer: nil) == .poll, "a quick yield: nobody was waiting")
        policy.yielded(took: .microseconds(20))
        #expect(policy.nextWait(now: start + .microseconds(50), firstTimer: nil) == .sleep(timeoutMilliseconds: -1),
                "a slow yield: another thread ran, so the loop gives the CPU up for the rest of its window")
        #expect(policy.nextWait(now: start + .microseconds(50), firstTimer: start + .milliseconds(4)) == .sleep(timeoutMilliseconds: 4))
        #expect(policy.nextWait(now: start + .microseconds(50), firstTimer: start + .microseconds(40)) == .sleep(timeoutMilliseconds: 0),
                "a due timer still runs at once")
        policy.workArrived(at: start + .microseconds(500), events: 1)
        #expect(policy.nextWait(now: start + .microseconds(510), firstTimer: nil) == .poll, "work starts polling again")
    }

    @Test func aLoopThatFoundACrowdReadyDoesNotPollAfterIt() {
        var policy = BusyPollPolicy(window: .microseconds(200), crowd: 3, start: start)
        policy.workArrived(at: start, events: 3)
        #expect(policy.nextWait(now: start + .microseconds(10), firstTimer: nil) == .poll, "three ready: few clients, poll")
        policy.workArrived(at: start + .microseconds(20), events: 4)
        #expect(policy.nextWait(now: start + .microseconds(30), firstTimer: nil) == .sleep(timeoutMilliseconds: -1),
                "four ready at once: many clients, the next request comes soon anyway")
        policy.workArrived(at: start + .microseconds(40), events: 1)
        #expect(policy.nextWait(now: start + .microseconds(50), firstTimer: nil) == .poll, "back to a lone request: poll again")
    }

    @Test func aTimerNeitherWaitsForTheWindowNorExtendsIt() {
        let policy = BusyPollPolicy(window: .microseconds(200), start: start)
        // A due timer is run at once, polling or not; a timer after the window is slept on.
        #expect(policy.nextWait(now: start + .microseconds(50), firstTimer: start + .microseconds(40)) == .sleep(timeoutMilliseconds: 0))
        #expect(policy.nextWait(now: start + .microseconds(50), firstTimer: start + .microseconds(60)) == .poll)
        #expect(policy.nextWait(now: start + .microseconds(300), firstTimer: start + .microseconds(1_300)) == .sleep(timeoutMilliseconds: 1))
        #expect(policy.nextWait(now: start + .microseconds(300), firstTimer: start + .seconds(3_600)) == .sleep(timeoutMilliseconds: 3_600_000))
    }

    @Test func aTimerFarAwayStillGivesAValidTimeout() {
        let policy = BusyPollPolicy(window: .zero, start: start)
        #expect(policy.nextWait(now: start, firstTimer: .distantFuture) == .sleep(timeoutMilliseconds: .max),
                "clamped, not overflowed")
    }
}
