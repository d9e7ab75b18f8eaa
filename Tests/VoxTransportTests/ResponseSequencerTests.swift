import Testing
import VoxTransport

@Suite struct ResponseSequencerTests {
    @Test func inOrderCompletionsAreReleasedAtOnce() {
        var sequencer = ResponseSequencer<Int>()
        let a = sequencer.enqueue()
        let b = sequencer.enqueue()
        #expect(sequencer.complete(a, with: 1) == [1])
        #expect(sequencer.complete(b, with: 2) == [2])
        #expect(sequencer.pendingCount == 0)
    }

    @Test func laterAnswersWaitForEarlierOnes() {
        var sequencer = ResponseSequencer<Int>()
        let tickets = (0..<4).map { _ in sequencer.enqueue() }
        #expect(sequencer.complete(tickets[2], with: 2) == [])
        #expect(sequencer.complete(tickets[1], with: 1) == [])
        #expect(sequencer.pendingCount == 4)
        #expect(sequencer.complete(tickets[0], with: 0) == [0, 1, 2])
        #expect(sequencer.complete(tickets[3], with: 3) == [3])
    }

    @Test(arguments: [1, 2, 3, 4, 5])
    func anyCompletionOrderReleasesEverythingInRequestOrder(seed: Int) {
        var sequencer = ResponseSequencer<Int>()
        let tickets = (0..<50).map { _ in sequencer.enqueue() }
        var generator = LinearCongruential(state: UInt64(seed))
        var released: [Int] = []
        for index in Array(0..<50).shuffled(using: &generator) {
            released += sequencer.complete(tickets[index], with: index)
        }
        #expect(released == Array(0..<50))
    }
}

struct LinearCongruential: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state
    }
}

@Suite struct ResponseSequencerFastPathTests {
    @Test func firstInLineIsReleasedDirectly() {
        var sequencer = ResponseSequencer<Int>()
        let a = sequencer.enqueue()
        let b = sequencer.enqueue()
        let early = sequencer.releaseIfFirst(b)
        #expect(!early, "b waits behind a")
        let first = sequencer.releaseIfFirst(a)
        let second = sequencer.releaseIfFirst(b)
        #expect(first && second)
        #expect(sequencer.pendingCount == 0)
    }

    @Test func heldAnswersBlockTheFastPath() {
        var sequencer = ResponseSequencer<Int>()
        let a = sequencer.enqueue()
        let b = sequencer.enqueue()
        let c = sequencer.enqueue()
        #expect(sequencer.complete(b, with: 2) == [])
        #expect(sequencer.complete(a, with: 1) == [1, 2])
        let released = sequencer.releaseIfFirst(c)
        #expect(released)
    }
}
