import Testing
import VoxCore

/// Which reads become access events for the prefetcher, without a cache or a clock.
@Suite struct AccessEventThrottleTests {
    @Test func oneEventPerSpeakerPerGap() {
        var throttle = AccessEventThrottle(gapMilliseconds: 1000)
        let sent = [
            throttle.shouldSend("a", at: 10_000),  // first read: sent
            throttle.shouldSend("a", at: 10_400),  // same second: not sent
            throttle.shouldSend("b", at: 10_500),  // another speaker: sent
            throttle.shouldSend("a", at: 10_999),  // still inside a's window
            throttle.shouldSend("a", at: 11_000),  // a's window has passed: sent, a new window
            throttle.shouldSend("a", at: 11_500),
            throttle.shouldSend("b", at: 11_600),  // b's window (from 10 500) has passed
        ]
        #expect(sent == [true, false, true, false, true, false, true])
    }

    @Test func aClockThatWentBackDoesNotSilenceASpeaker() {
        var throttle = AccessEventThrottle(gapMilliseconds: 1000)
        // Earlier than the last event: sent, and the window starts over from there.
        let sent = [throttle.shouldSend("a", at: 50_000), throttle.shouldSend("a", at: 40_000), throttle.shouldSend("a", at: 40_500)]
        #expect(sent == [true, true, false])
    }

    @Test func theMapPrunesItselfAsItGrows() {
        var throttle = AccessEventThrottle(gapMilliseconds: 1000)
        // 10 000 speakers, one new one every millisecond: only the last second's are live.
        for index in 0..<10_000 { _ = throttle.shouldSend("speaker-\(index)", at: 1_000_000 + Int64(index)) }
        #expect(throttle.count <= 2048, "bounded by twice the live windows: \(throttle.count)")
    }

    @Test func pruningKeepsOnlyOpenWindows() {
        var throttle = AccessEventThrottle(gapMilliseconds: 1000)
        for index in 0..<1000 { _ = throttle.shouldSend("speaker-\(index)", at: 1_000 + Int64(index)) }
        #expect(throttle.count == 1000)
        throttle.prune(now: 2_500)  // windows of reads before 1 500 have passed
        #expect(throttle.count == 499)
        // A window still open survives the prune; a pruned speaker is sent again.
        let sent = [throttle.shouldSend("speaker-999", at: 2_500), throttle.shouldSend("speaker-0", at: 2_500)]
        #expect(sent == [false, true])
        throttle.prune(now: 10_000)
        #expect(throttle.count == 0)
    }
}
