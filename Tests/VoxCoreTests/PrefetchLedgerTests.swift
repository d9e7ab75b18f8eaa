import Testing
import VoxCore

/// The cache's prefetch accounting, without a cache.
@Suite struct PrefetchLedgerTests {
    @Test func theFirstReadOfAPrefetchedEntryIsUsedAndAnUnreadEvictionIsWasted() {
        var ledger = PrefetchLedger<String>()
        #expect(ledger.precision == nil, "nothing measured yet")
        ledger.loaded("a")
        ledger.loaded("b")
        ledger.loaded("a")  // loaded again before any read: still one prefetch
        #expect(ledger.loaded == 2 && ledger.pending == 2)

        let outcomes = [ledger.read("a"), ledger.read("a"), ledger.read("z"), ledger.evicted("a"), ledger.evicted("b"), ledger.evicted("b")]
        // The second read of "a" is an ordinary hit, "z" was never prefetched, "a" was read
        // before its eviction (already used), "b" is wasted once.
        #expect(outcomes == [true, false, false, false, true, false])
        #expect(ledger.used == 1 && ledger.wasted == 1 && ledger.pending == 0)
        #expect(ledger.precision == 0.5)
    }

    @Test func aForgottenEntryCountsNeitherWay() {
        var ledger = PrefetchLedger<Int>()
        ledger.loaded(1)
        ledger.forget(1)
        let outcomes = [ledger.read(1), ledger.evicted(1)]
        #expect(outcomes == [false, false])
        #expect(ledger.loaded == 1 && ledger.used == 0 && ledger.wasted == 0 && ledger.precision == nil)
    }

    @Test func aReloadOfEverythingWastesTheMarkedEntriesItLeftOut() {
        var ledger = PrefetchLedger<Int>()
        for key in 1...4 { ledger.loaded(key) }
        ledger.read(1)
        let left = ledger.retain(where: { $0 == 2 })
        #expect(left == 2, "3 and 4 left the cache unread")
        #expect(ledger.used == 1 && ledger.wasted == 2 && ledger.pending == 1)
        let readTwo = ledger.read(2)
        #expect(readTwo)
    }
}
