import Testing
import VoxCore

@Suite struct CoalescedSendTests {
    @Test func theFirstGoesAtOnceAndNotWhileAnotherIsQueued() {
        var send = CoalescedSend<Int>()
        let first = send.asked(1, queued: false)
        let whileQueued = send.asked(2, queued: true)
        let owed = send.answered()
        #expect(first)
        #expect(!whileQueued, "one waiting in the queue is enough")
        #expect(owed == nil, "nothing was on its way, nothing is owed")
    }

    @Test func whileOneIsOnItsWayTheRestBecomeOneOwedForItsAnswer() {
        var send = CoalescedSend<Int>()
        let first = send.asked(1, queued: false)
        send.sent()
        let asked = (2...100).map { send.asked($0, queued: false) }
        let owed = send.answered()
        send.sent()
        let owedAfterThat = send.answered()
        let next = send.asked(101, queued: false)
        #expect(first)
        #expect(!asked.contains(true), "none goes while the first is unanswered")
        #expect(owed == 100, "the latest of them goes once the answer is back")
        #expect(owedAfterThat == nil, "and only one")
        #expect(next, "nothing on its way: the next goes at once")
    }

    @Test func aFailedSendStillReleasesWhatIsOwedAndResetForgetsIt() {
        var send = CoalescedSend<String>()
        _ = send.asked("a", queued: false)
        send.sent()
        let whileOnItsWay = send.asked("b", queued: false)
        let owed = send.answered()
        send.sent()
        _ = send.asked("c", queued: false)
        send.reset()
        let owedAfterReset = send.answered()
        let next = send.asked("d", queued: false)
        #expect(!whileOnItsWay)
        #expect(owed == "b", "a broken connection answers too: the owed one is queued and reconnects")
        #expect(owedAfterReset == nil)
        #expect(next)
    }
}
