import Testing
import VoxChaos

@Suite struct ChaosScheduleTests {
    let roles = ["cache", "sync", "metrics", "prefetch"]

    func schedule(seed: UInt64 = 7, kill: String = "1s", stop: String = "0", postgres: Int = 0, redis: Int = 0,
                  duration: Duration = .seconds(20)) throws -> ChaosSchedule {
        ChaosSchedule.make(duration: duration, roles: roles, kill: try ChaosRate(parsing: kill), stop: try ChaosRate(parsing: stop),
                           postgresBounces: postgres, redisBounces: redis, downFor: .seconds(2), seed: seed)
    }

    @Test func oneKillPerIntervalInsideTheRunInTimeOrder() throws {
        let plan = try schedule()
        #expect(plan.events.count == 20)
        #expect(plan.events.allSatisfy { $0.kind == .kill && $0.at >= .zero && $0.at < .seconds(20) })
        #expect(plan.events.map(\.at) == plan.events.map(\.at).sorted())
        for (slot, event) in plan.events.enumerated() {
            // In the first half of its own interval.
            #expect(event.at >= .seconds(slot) && event.at < .seconds(slot) + .milliseconds(500))
        }
    }

    @Test func everyRoleIsHitEquallyOftenWithinARound() throws {
        for seed in 0..<50 as Range<UInt64> {
            let plan = try schedule(seed: seed, kill: "1.5s")   // 14 kills, 4 roles
            let counts = roles.map { plan.count(role: $0, kind: .kill) }
            #expect(counts.reduce(0, +) == 14)
            #expect(counts.min()! >= 3 && counts.max()! <= 4, "seed \(seed): \(counts)")
            // Each block of four consecutive kills is a permutation of the roles.
            for block in stride(from: 0, to: 12, by: 4) {
                #expect(Set(plan.events[block..<block + 4].map(\.role)) == Set(roles))
            }
        }
    }

    @Test func sameSeedSamePlanOtherSeedOtherOrder() throws {
        #expect(try schedule(seed: 3) == schedule(seed: 3))
        #expect(try schedule(seed: 3).events.map(\.role) != schedule(seed: 4).events.map(\.role))
    }

    @Test func stopsAreInterleavedWithKillsAndCountedApart() throws {
        let plan = try schedule(kill: "2s", stop: "5s")
        #expect(plan.events.filter { $0.kind == .kill }.count == 10)
        #expect(plan.events.filter { $0.kind == .stop }.count == 4)
        #expect(plan.events.map(\.at) == plan.events.map(\.at).sorted())
    }

    @Test func nothingWhenOffOrNoRoles() throws {
        #expect(try schedule(kill: "0").events.isEmpty)
        let none = ChaosSchedule.make(duration: .seconds(10), roles: [], kill: try ChaosRate(parsing: "1"), stop: .off,
                                      postgresBounces: 0, redisBounces: 0, downFor: .seconds(1), seed: 1)
        #expect(none.events.isEmpty)
    }

    @Test func outagesAreSpreadEvenlyAndAlternate() throws {
        let one = try schedule(postgres: 1)
        #expect(one.postgresOutages == [.init(at: .seconds(9), downFor: .seconds(2))])  // centred at 10 s
        #expect(one.redisOutages.isEmpty)

        let both = try schedule(postgres: 2, redis: 1, duration: .seconds(40))
        // Centres at 10, 20, 30 s: PostgreSQL, Redis, PostgreSQL.
        #expect(both.postgresOutages.map(\.at) == [.seconds(9), .seconds(29)])
        #expect(both.redisOutages.map(\.at) == [.seconds(19)])

        let redisOnly = try schedule(redis: 2, duration: .seconds(30))
        #expect(redisOnly.redisOutages.map(\.at) == [.seconds(9), .seconds(19)])
    }
}
