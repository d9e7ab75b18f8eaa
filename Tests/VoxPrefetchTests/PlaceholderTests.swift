import Testing
@testable import VoxPrefetch

// Replaced by the predictor's tests.
@Test func plannerKeepsTheThreshold() {
    var planner = PrefetchPlanner(maxPerInterval: 1)
    let sent = planner.plan([Prediction(speaker: "a", confidence: 0.9, expectedAtMilliseconds: 0, reason: .interval),
                             Prediction(speaker: "b", confidence: 0.5, expectedAtMilliseconds: 0, reason: .interval)],
                            threshold: 0.7, nowMilliseconds: 0, windowMilliseconds: 1)
    #expect(sent == ["a"])
}
