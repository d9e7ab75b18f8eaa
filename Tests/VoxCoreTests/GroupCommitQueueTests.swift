import Testing
import VoxCore

@Suite struct GroupCommitQueueTests {
    @Test func aLoneWriteCommitsAtOnce() {
        var queue = GroupCommitQueue<Int>(maxBatch: 100)
        #expect(queue.enqueue(1) == [1])
        #expect(queue.isCommitting)
        #expect(queue.batchFinished() == nil)
        #expect(!queue.isCommitting)
    }

    @Test func writesArrivingDuringACommitShareTheNextOne() {
        var queue = GroupCommitQueue<Int>(maxBatch: 100)
        #expect(queue.enqueue(1) == [1])
        for item in 2...6 { #expect(queue.enqueue(item) == nil) }
        #expect(queue.waitingCount == 5)
        #expect(queue.batchFinished() == [2, 3, 4, 5, 6], "one transaction for five writes")
        #expect(queue.batchFinished() == nil)
    }

    @Test func batchesAreCappedAndKeepArrivalOrder() {
        var queue = GroupCommitQueue<Int>(maxBatch: 3)
        _ = queue.enqueue(0)
        for item in 1...7 { _ = queue.enqueue(item) }
        #expect(queue.batchFinished() == [1, 2, 3])
        #expect(queue.batchFinished() == [4, 5, 6])
        #expect(queue.batchFinished() == [7])
        #expect(queue.batchFinished() == nil)
        #expect(queue.enqueue(8) == [8], "idle again: the next write starts at once")
    }
}
