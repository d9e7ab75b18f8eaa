import Testing
@testable import VoxPrefetch

@Suite struct PrefetchPlannerTests {
    func prediction(_ speaker: String, _ confidence: Double) -> Prediction {
        Prediction(speaker: speaker, confidence: confidence, expectedAtMilliseconds: 0, reason: .interval)
    }

    @Test func sendsWhatReachesTheThresholdUpToTheCap() {
        var planner = PrefetchPlanner(maxPerInterval: 2)
        let sent = planner.plan([prediction("a", 0.95), prediction("b", 0.9), prediction("c", 0.8), prediction("d", 0.5)],
                                threshold: 0.7, nowMilliseconds: 0, windowMilliseconds: 300_000)
        #expect(sent == ["a", "b"])
    }

    @Test func doesNotResendWithinTheWindow() {
        var planner = PrefetchPlanner(maxPerInterval: 10)
        let predictions = [prediction("a", 0.9), prediction("b", 0.8)]
        #expect(planner.plan(predictions, threshold: 0.7, nowMilliseconds: 0, windowMilliseconds: 300_000) == ["a", "b"])
        #expect(planner.plan(predictions + [prediction("c", 0.75)], threshold: 0.7, nowMilliseconds: 60_000, windowMilliseconds: 300_000) == ["c"])
        #expect(planner.plan(predictions, threshold: 0.7, nowMilliseconds: 300_000, windowMilliseconds: 300_000) == ["a", "b"])
        #expect(planner.recentlySent == 3)
    }

    @Test func theCapIsATenthOfTheCache() {
        #expect(PrefetchPlanner.perInterval(configured: 100, cacheCapacity: 100) == 10)
        #expect(PrefetchPlanner.perInterval(configured: 5, cacheCapacity: 100_000) == 5)
        #expect(PrefetchPlanner.perInterval(configured: 100, cacheCapacity: 4) == 1)
    }
}

@Suite struct AdaptiveThresholdTests {
    @Test func risesWhenPrecisionIsBelowTarget() {
        var threshold = AdaptiveThreshold()
        #expect(threshold.value == 0.7)
        // Fewer than 20 decided: no move yet.
        #expect(threshold.observe(used: 5, wasted: 10, misses: 100) == 0.7)
        // 5 + 20 used of 40 decided = 0.625 < 0.8.
        #expect(abs(threshold.observe(used: 20, wasted: 5, misses: 100) - 0.75) < 1e-9)
    }

    @Test func fallsWhenPrecisionIsHighAndTheCacheStillMisses() {
        var threshold = AdaptiveThreshold()
        #expect(abs(threshold.observe(used: 30, wasted: 0, misses: 10) - 0.65) < 1e-9)
        // High precision but no misses: nothing to gain, it stays.
        #expect(abs(threshold.observe(used: 30, wasted: 0, misses: 0) - 0.65) < 1e-9)
        // Precision between target and target + margin: it stays.
        #expect(abs(threshold.observe(used: 17, wasted: 3, misses: 10) - 0.65) < 1e-9)
    }

    @Test func staysWithinBoundsAndStillWhenNotAdaptive() {
        var threshold = AdaptiveThreshold()
        for _ in 0..<20 { threshold.observe(used: 0, wasted: 50, misses: 0) }
        #expect(threshold.value == 0.95)
        for _ in 0..<20 { threshold.observe(used: 50, wasted: 0, misses: 5) }
        #expect(abs(threshold.value - 0.5) < 1e-9)

        var fixed = AdaptiveThreshold(configuration: .init(initial: 0.8, adaptive: false))
        fixed.observe(used: 0, wasted: 500, misses: 0)
        #expect(fixed.value == 0.8)

        var restored = AdaptiveThreshold()
        restored.restore(2)
        #expect(restored.value == 0.95)
        restored.restore(.nan)
        #expect(restored.value == 0.95)

        // A start value outside 0.5-0.95 widens the bounds instead of being clamped.
        let low = AdaptiveThreshold(configuration: .init(initial: 0.3))
        #expect(low.value == 0.3 && low.configuration.minimum == 0.3 && low.configuration.maximum == 0.95)
    }
}

@Suite struct CacheTotalsTests {
    @Test func changesSinceTheLastAnswerWithTheFirstOnlyABaseline() {
        var totals = CacheTotals()
        #expect(totals.precision == nil)
        #expect(totals.update(used: 30, wasted: 10) == nil, "the previous prefetch worker's news")
        #expect(totals.precision == 0.75)
        let change = totals.update(used: 34, wasted: 11)
        #expect(change?.used == 4 && change?.wasted == 1)
        // The cache worker restarted: its totals started again from 0.
        let restarted = totals.update(used: 2, wasted: 3)
        #expect(restarted?.used == 2 && restarted?.wasted == 3)
        #expect(totals.used == 2 && totals.wasted == 3)
    }
}
