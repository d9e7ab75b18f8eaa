import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import VoxCache

/// `NudgePacing`'s shell on a real event loop: what it sends, and when.
@Suite struct NudgePacerTests {
    /// A burst of commits is one nudge at once and one more when the interval is up (for the
    /// commits after the first), not one per commit; without commits, nothing more.
    @Test(.timeLimit(.minutes(1))) func aBurstOfCommitsIsANudgeNowAndOneWhenTheIntervalIsUp() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let sent = NIOLockedValueBox<[ContinuousClock.Instant]>([])
        let pacer = NudgePacer(interval: .milliseconds(50), loop: group.next()) { sent.withLockedValue { $0.append(.now) } }
        for _ in 0..<20 { pacer.committed() }
        #expect(sent.withLockedValue { $0.count } == 1, "the first commit nudges at once, the others wait")
        let deadline = ContinuousClock.now + .seconds(10)
        while sent.withLockedValue({ $0.count }) < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(200))
        let times = sent.withLockedValue { $0 }
        #expect(times.count == 2, "one owed nudge for the 19 commits after the first")
        if times.count == 2 { #expect(times[0].duration(to: times[1]) >= .milliseconds(50)) }
        pacer.committed()
        #expect(sent.withLockedValue { $0.count } == 3, "a commit after a quiet spell nudges at once")
        try await group.shutdownGracefully()
    }
}
