import Testing
import VoxCore

@Suite struct GroupCommitQueueTests {
    typealias Queue = GroupCommitQueue<Int>

    @Test func aLoneWriteCommitsAtOnce() {
        var queue = Queue(maxBatch: 100)
        #expect(queue.enqueue(1) == .startBatch([1]))
        #expect(queue.isCommitting)
        #expect(queue.batchFinished() == .none)
        #expect(!queue.isCommitting)
        #expect(queue.enqueue(2) == .startBatch([2]), "a lone writer expects no company and never waits")
    }

    @Test func writesArrivingDuringACommitShareTheNextOne() {
        var queue = Queue(maxBatch: 100)
        #expect(queue.enqueue(1) == .startBatch([1]))
        for item in 2...6 { #expect(queue.enqueue(item) == .none) }
        #expect(queue.waitingCount == 5)
        // Five are waiting and the writer just acknowledged is expected back: hold for it.
        #expect(queue.batchFinished() == .armHoldTimer(id: 1))
        #expect(queue.enqueue(7) == .startBatch([2, 3, 4, 5, 6, 7]), "one transaction for six writes")
        #expect(queue.holdTimedOut(id: 1) == .none, "a timer that fires after its batch started is a no-op")
    }

    @Test func theBatchesOfManyClosedLoopWritersStayWholeInsteadOfAlternating() {
        // 8 writers, each writing again as soon as it is acknowledged.
        var queue = Queue(maxBatch: 100)
        #expect(queue.enqueue(0) == .startBatch([0]))
        for writer in 1..<8 { #expect(queue.enqueue(writer) == .none) }
        var action = queue.batchFinished()  // writer 0 acknowledged; 1…7 waiting
        #expect(action == .armHoldTimer(id: 1))
        action = queue.enqueue(0)
        #expect(action == .startBatch(Array(1..<8) + [0]))
        for round in 0..<3 {
            #expect(queue.batchFinished() == .none, "nothing waits yet")
            #expect(queue.enqueue(0) == .armHoldTimer(id: UInt64(2 + round)), "eight are expected back")
            for writer in 1..<7 { #expect(queue.enqueue(writer) == .none, "waits for the eighth") }
            #expect(queue.enqueue(7) == .startBatch(Array(0..<8)))
        }
    }

    @Test func aWriterThatDoesNotComeBackCostsOneHoldAndIsThenNotExpected() {
        var queue = Queue(maxBatch: 100)
        _ = queue.enqueue(1)
        _ = queue.enqueue(2)
        #expect(queue.batchFinished() == .armHoldTimer(id: 1))  // 2 waits, 1 expected back
        #expect(queue.holdTimedOut(id: 1) == .startBatch([2]), "1 did not come back in time")
        #expect(queue.holdTimedOut(id: 1) == .none)
        #expect(queue.batchFinished() == .none)
        #expect(queue.enqueue(3) == .startBatch([3]), "only one writer is expected now")
    }

    @Test func batchesAreCappedAndKeepArrivalOrder() {
        var queue = Queue(maxBatch: 3)
        _ = queue.enqueue(0)
        for item in 1...7 { _ = queue.enqueue(item) }
        #expect(queue.batchFinished() == .startBatch([1, 2, 3]))
        #expect(queue.batchFinished() == .startBatch([4, 5, 6]))
        #expect(queue.batchFinished() == .armHoldTimer(id: 1), "7 waits; the three just acknowledged may join it")
        #expect(queue.holdTimedOut(id: 1) == .startBatch([7]))
        #expect(queue.batchFinished() == .none)
        #expect(queue.enqueue(8) == .startBatch([8]), "idle again, one writer expected: the next write starts at once")
    }
}
