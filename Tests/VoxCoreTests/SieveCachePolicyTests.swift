import Testing
import VoxCore

/// A textbook LRU, only as the baseline SIEVE must beat.
struct LRUBaseline {
    let capacity: Int
    var order: [Int] = []  // least recent first

    mutating func read(_ key: Int) -> Bool {
        if let position = order.firstIndex(of: key) {
            order.remove(at: position)
            order.append(key)
            return true
        }
        if order.count >= capacity { order.removeFirst() }
        order.append(key)
        return false
    }
}

@Suite struct SieveCachePolicyTests {
    /// Reads through the policy as the cache worker does: access, and insert on a miss.
    func read(_ policy: inout SieveCachePolicy<Int>, _ key: Int) -> Bool {
        if policy.access(key) { return true }
        policy.insert(key)
        return false
    }

    @Test func evictsTheOldestUnvisitedEntry() {
        var policy = SieveCachePolicy<String>(capacity: 3)
        policy.insert("a")
        policy.insert("b")
        policy.insert("c")
        let hit = policy.access("a")
        #expect(hit)
        #expect(policy.insert("d") == "b", "a was visited, so the hand passes it and takes b")
        #expect(policy.contains("a") && policy.contains("c") && policy.contains("d"))
        #expect(policy.insert("e") == "c")
        // The hand goes on from where it stopped, towards the newest entries: a stream of new
        // entries that nobody reads evicts itself (quick demotion) and a, read once, stays.
        for (inserted, evicted) in [("f", "d"), ("g", "e"), ("h", "f"), ("i", "g"), ("j", "h")] {
            #expect(policy.insert(inserted) == evicted)
        }
        #expect(policy.contains("a"))
    }

    @Test func removeAndReinsert() {
        var policy = SieveCachePolicy<Int>(capacity: 2)
        policy.insert(1)
        policy.insert(2)
        policy.remove(1)
        #expect(policy.count == 1 && !policy.contains(1))
        #expect(policy.insert(3) == nil, "room was freed")
        #expect(policy.insert(4) != nil)
        #expect(policy.count == 2)
        let miss = policy.access(99)
        #expect(!miss)
    }

    @Test func neverHoldsMoreThanItsCapacity() {
        var policy = SieveCachePolicy<Int>(capacity: 50)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let key = Int.random(in: 0..<500, using: &rng)
            if Int.random(in: 0..<10, using: &rng) == 0 { policy.remove(key) } else { _ = read(&policy, key) }
            #expect(policy.count <= 50)
        }
    }

    @Test func aScanDoesNotFlushTheSpeakersWhoUnlockEveryDay() {
        // 100 regular speakers read over and over, interrupted by one-off scans of 1 000 others
        // (a bulk import, an admin listing) — the case LRU handles worst.
        let capacity = 150
        var sieve = SieveCachePolicy<Int>(capacity: capacity)
        var lru = LRUBaseline(capacity: capacity)
        var sieveHits = 0
        var lruHits = 0
        var reads = 0
        for round in 0..<30 {
            for regular in 0..<100 {
                reads += 1
                if read(&sieve, regular) { sieveHits += 1 }
                if lru.read(regular) { lruHits += 1 }
            }
            if round % 3 == 2 {
                for scanned in 0..<1_000 {
                    let key = 10_000 + round * 1_000 + scanned
                    _ = read(&sieve, key)
                    _ = lru.read(key)
                }
            }
        }
        let sieveRate = Double(sieveHits) / Double(reads)
        let lruRate = Double(lruHits) / Double(reads)
        #expect(sieveRate > lruRate + 0.2, "SIEVE \(sieveRate) vs LRU \(lruRate) on the regulars")
    }
}
