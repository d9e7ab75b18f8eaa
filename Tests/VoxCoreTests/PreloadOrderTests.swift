import Testing
import VoxCore

@Suite struct PreloadOrderTests {
    typealias Candidate = PreloadOrder.Candidate

    @Test func theMostRecentlyUsedComeLastAndTheColdestAreLeftOut() {
        let candidates = [
            Candidate(lastAccess: 100, updatedAt: 1),   // 0
            Candidate(lastAccess: 300, updatedAt: 1),   // 1: hottest
            Candidate(lastAccess: 0, updatedAt: 50),    // 2: never served
            Candidate(lastAccess: 200, updatedAt: 1),   // 3
        ]
        #expect(PreloadOrder.admissionOrder(candidates, capacity: 3) == [0, 3, 1], "coldest first, so SIEVE's head holds the hottest")
        #expect(PreloadOrder.admissionOrder(candidates, capacity: 10) == [2, 0, 3, 1])
        #expect(PreloadOrder.admissionOrder(candidates, capacity: 0) == [])
    }

    @Test func neverServedProfilesRankByTheirLastWriteAndTiesKeepTheirOrder() {
        let candidates = [
            Candidate(lastAccess: 0, updatedAt: 10),  // 0
            Candidate(lastAccess: 0, updatedAt: 30),  // 1
            Candidate(lastAccess: 0, updatedAt: 10),  // 2: ties with 0
            Candidate(lastAccess: 0, updatedAt: 20),  // 3
        ]
        #expect(PreloadOrder.admissionOrder(candidates, capacity: 4) == [2, 0, 3, 1])
        #expect(PreloadOrder.admissionOrder(candidates, capacity: 2) == [3, 1])
    }
}

@Suite struct AccessLogTests {
    @Test func notesEachSpeakerOnceAndDrainsInIDOrder() {
        var log = AccessLog()
        for id in ["carol", "alice", "carol", "bob", "alice"] { log.record(id) }
        #expect(log.count == 3)
        #expect(log.drain() == ["alice", "bob", "carol"])
        #expect(log.count == 0)
        #expect(log.drain() == [])
        log.record("dave")
        #expect(log.drain() == ["dave"])
    }
}
