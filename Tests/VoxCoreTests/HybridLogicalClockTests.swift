import Testing
import VoxCore

@Suite struct HybridLogicalClockTests {
    @Test func followsTheWallClock() {
        var clock = HybridLogicalClock()
        let a = clock.tick(wallMilliseconds: 1_000)
        let b = clock.tick(wallMilliseconds: 2_000)
        #expect(HybridLogicalClock.milliseconds(of: a) == 1_000)
        #expect(HybridLogicalClock.milliseconds(of: b) == 2_000)
        #expect(b > a)
    }

    @Test func eventsInOneMillisecondStillIncrease() {
        var clock = HybridLogicalClock()
        let versions = (0..<1_000).map { _ in clock.tick(wallMilliseconds: 5_000) }
        #expect(versions == versions.sorted() && Set(versions).count == versions.count)
        #expect(versions.allSatisfy { HybridLogicalClock.milliseconds(of: $0) == 5_000 })
    }

    @Test func aWallClockSteppingBackNeverMakesAnOlderVersion() {
        var clock = HybridLogicalClock()
        let before = clock.tick(wallMilliseconds: 10_000)
        let stepped = clock.tick(wallMilliseconds: 3_000)  // NTP stepped the clock back 7 s
        #expect(stepped > before)
        #expect(HybridLogicalClock.milliseconds(of: stepped) == 10_000)
        let later = clock.tick(wallMilliseconds: 11_000)
        #expect(later > stepped && HybridLogicalClock.milliseconds(of: later) == 11_000)
    }

    @Test func theCounterCarriesIntoTheMilliseconds() {
        var clock = HybridLogicalClock()
        var version: UInt64 = 0
        for _ in 0...65_536 { version = clock.tick(wallMilliseconds: 7) }
        #expect(HybridLogicalClock.milliseconds(of: version) == 8, "65 537 events in one ms spill into the next")
    }

    @Test func versionsSeenFromOtherInstancesAreOvertaken() {
        var clock = HybridLogicalClock()
        _ = clock.tick(wallMilliseconds: 1_000)
        let remote = (UInt64(50_000) << 16) | 3  // another instance whose clock runs ahead
        clock.observe(remote, wallMilliseconds: 1_001)
        let next = clock.tick(wallMilliseconds: 1_002)
        #expect(next > remote)
        clock.observe(5, wallMilliseconds: 1_003)  // an old remote version changes nothing
        #expect(clock.tick(wallMilliseconds: 1_004) > next)
    }

    @Test func negativeWallTimesAreTreatedAsZero() {
        var clock = HybridLogicalClock()
        #expect(clock.tick(wallMilliseconds: -5) == 1)
    }
}
