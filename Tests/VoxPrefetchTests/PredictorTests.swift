import Testing
@testable import VoxPrefetch

/// Monday 2024-01-01 00:00 UTC, and friends, in unix ms.
let monday: Int64 = 1_704_067_200_000
let minute: Int64 = 60_000
let hour: Int64 = 60 * minute
let day: Int64 = 24 * hour

@Suite struct IntervalPatternTests {
    @Test func aRegularSpeakerIsPredictedJustBeforeTheNextRead() {
        var predictor = PrefetchPredictor()
        // Every 10 minutes ± 20 s from 09:00, twelve reads.
        let jitter: [Int64] = [0, 15, -20, 5, 10, -10, 20, -5, 0, 12, -15, 8]
        var time = monday + 9 * hour
        for offset in jitter {
            predictor.record("alice", atMilliseconds: time + offset * 1000)
            time += 10 * minute
        }
        let last = time - 10 * minute + 8_000
        #expect(predictor.statistics.activePatterns == 1)

        // Four minutes before the next read is due, with a five-minute window: predicted.
        let soon = predictor.predictions(nowMilliseconds: last + 6 * minute, windowMilliseconds: 5 * minute)
        let alice = try! #require(soon.first)
        #expect(alice.speaker == "alice")
        #expect(alice.reason == .interval)
        #expect(alice.confidence >= 0.7)
        #expect(abs(alice.expectedAtMilliseconds - (last + 10 * minute)) < minute)

        // Too early for a five-minute window: nothing yet.
        #expect(predictor.predictions(nowMilliseconds: last + 2 * minute, windowMilliseconds: 5 * minute).isEmpty)
        // Long overdue (she has gone): the prediction lapses.
        #expect(predictor.predictions(nowMilliseconds: last + 40 * minute, windowMilliseconds: 5 * minute).isEmpty)
    }

    @Test func confidenceFallsOnceTheExpectedTimeHasPassedWithoutARead() {
        var predictor = PrefetchPredictor()
        for index in 0..<10 { predictor.record("bob", atMilliseconds: monday + 9 * hour + Int64(index) * 10 * minute) }
        let last = monday + 9 * hour + 90 * minute
        let before = predictor.predictions(nowMilliseconds: last + 9 * minute, windowMilliseconds: 5 * minute).first?.confidence ?? 0
        let after = predictor.predictions(nowMilliseconds: last + 10 * minute + 20_000, windowMilliseconds: 5 * minute).first?.confidence ?? 0
        #expect(before > 0.7)
        #expect(after < before)
    }

    @Test func irregularReadsAreNotAPattern() {
        var predictor = PrefetchPredictor()
        var rng = SeededGenerator(seed: 3)
        var time = monday + 9 * hour
        for _ in 0..<40 {
            predictor.record("carol", atMilliseconds: time)
            time += Int64(rng.exponential(Double(20 * minute))) + 1000
        }
        #expect(predictor.statistics.activePatterns == 0)
        // Whenever one looks over the next hours, nothing reaches the default threshold.
        for step in 0..<60 {
            let now = time + Int64(step) * 2 * minute
            #expect(predictor.predictions(nowMilliseconds: now, windowMilliseconds: 5 * minute, minimumConfidence: 0.7).isEmpty)
        }
    }

    @Test func readsWithinASecondOfTheLastAreTheSameRead() {
        var predictor = PrefetchPredictor()
        let start = monday + 9 * hour
        let learned = [
            predictor.record("erin", atMilliseconds: start),
            predictor.record("erin", atMilliseconds: start + 1),  // a retry 1 ms later teaches nothing
            predictor.record("erin", atMilliseconds: start + PrefetchPredictor.sameReadMilliseconds - 1),
            predictor.record("erin", atMilliseconds: start + PrefetchPredictor.sameReadMilliseconds),
            predictor.record("erin", atMilliseconds: start - hour),  // earlier: placed in order, not dropped
            predictor.record("frank", atMilliseconds: start + 1),  // other speakers are not affected
        ]
        #expect(learned == [true, false, false, true, true, true])
        #expect(predictor.statistics.totalAccesses == 4)
        #expect(predictor.statistics.historyEvents == 4)

        // A client hammering one speaker 1000 times a second for a minute leaves 60 reads.
        for millisecond in stride(from: Int64(0), to: 60_000, by: 1) {
            predictor.record("grace", atMilliseconds: start + millisecond)
        }
        #expect(predictor.statistics.historyEvents == 64)
    }

    @Test func aBurstIsPredictedByFrequency() {
        var predictor = PrefetchPredictor()
        let start = monday + 14 * hour
        // Twelve reads 20-50 s apart (irregular): a burst that has gone on and on.
        let gaps: [Int64] = [20, 45, 30, 50, 25, 40, 20, 35, 50, 30, 45]
        var time = start
        predictor.record("dave", atMilliseconds: time)
        for gap in gaps {
            time += gap * 1000
            predictor.record("dave", atMilliseconds: time)
        }
        let prediction = try! #require(predictor.predictions(nowMilliseconds: time + 20_000, windowMilliseconds: 5 * minute).first)
        #expect(prediction.reason == .frequency)
        #expect(prediction.confidence > 0.85)
        // Quiet for twenty minutes: the burst is over.
        #expect(predictor.predictions(nowMilliseconds: time + 20 * minute, windowMilliseconds: 5 * minute).isEmpty)
    }

    /// Four quick reads once are a burst with nothing behind it: likelier than not to go on,
    /// but nowhere near certain — the threshold's ceiling (0.95) keeps it out.
    @Test func aFirstBurstIsNotCertain() {
        var predictor = PrefetchPredictor()
        for index in 0..<4 { predictor.record("erin", atMilliseconds: monday + 14 * hour + Int64(index) * 10_000) }
        let prediction = try! #require(predictor.predictions(nowMilliseconds: monday + 14 * hour + 40_000, windowMilliseconds: 5 * minute).first)
        #expect(prediction.reason == .frequency)
        #expect(prediction.confidence < 0.95)
        #expect(predictor.predictions(nowMilliseconds: monday + 14 * hour + 40_000, windowMilliseconds: 5 * minute, minimumConfidence: 0.95).isEmpty)
    }

    /// A read stamped in the future (a clock stepped back) predicts nothing by frequency, and
    /// times outside 1970-2200 are ignored.
    @Test func futureAndAbsurdTimesDoNotPredict() {
        var predictor = PrefetchPredictor()
        for index in 0..<6 { predictor.record("fay", atMilliseconds: monday + hour + Int64(index) * 10_000) }
        #expect(predictor.predictions(nowMilliseconds: monday, windowMilliseconds: 5 * minute).isEmpty)
        predictor.record("gus", atMilliseconds: .max)
        predictor.record("gus", atMilliseconds: -5)
        #expect(predictor.statistics.totalAccesses == 6 && predictor.speakers["gus"] == nil)
        #expect(predictor.predictions(nowMilliseconds: .max, windowMilliseconds: 5 * minute).isEmpty)
        #expect(predictor.predictions(nowMilliseconds: monday + hour + 60_000, windowMilliseconds: .max).isEmpty)
    }
}

@Suite struct RoutineTests {
    /// Arrives at 08:30 ± 3 min on weekdays and unlocks every 45 ± 20 min (too irregular for an
    /// interval pattern) until 17:00; never at weekends.
    func officeWeek(_ predictor: inout PrefetchPredictor, weeks: Int) {
        var rng = SeededGenerator(seed: 11)
        for dayIndex in 0..<(7 * weeks) where dayIndex % 7 < 5 {
            var time = monday + Int64(dayIndex) * day + 8 * hour + 30 * minute + Int64(rng.normal(0, Double(3 * minute)))
            while time < monday + Int64(dayIndex) * day + 17 * hour {
                predictor.record("erin", atMilliseconds: time)
                time += Int64(rng.uniform(Double(25 * minute), Double(65 * minute)))
            }
        }
    }

    @Test func theMorningArrivalIsPredictedOnWeekdaysAcrossASimulatedWeek() {
        var predictor = PrefetchPredictor()
        officeWeek(&predictor, weeks: 1)
        // Week 2, Monday to Friday at 08:24: the arrival at about 08:30 is predicted.
        for weekday in 0..<5 {
            let now = monday + Int64(7 + weekday) * day + 8 * hour + 24 * minute
            let prediction = try! #require(predictor.predictions(nowMilliseconds: now, windowMilliseconds: 10 * minute).first)
            #expect(prediction.reason == .routine)
            #expect(prediction.confidence >= 0.7)
            #expect(abs(prediction.expectedAtMilliseconds - (now + 6 * minute)) < 3 * minute)
            // She arrives; the routine has happened for today and is not predicted again.
            predictor.record("erin", atMilliseconds: now + 6 * minute)
            #expect(predictor.predictions(nowMilliseconds: now + 7 * minute, windowMilliseconds: 10 * minute).allSatisfy { $0.reason != .routine })
        }
        // Saturday 08:24 of week 2: weekends have no such routine.
        let saturday = monday + 12 * day + 8 * hour + 24 * minute
        #expect(predictor.predictions(nowMilliseconds: saturday, windowMilliseconds: 10 * minute).isEmpty)
        // Monday of week 2 at 06:00: too early for a ten-minute window.
        #expect(predictor.predictions(nowMilliseconds: monday + 7 * day + 6 * hour, windowMilliseconds: 10 * minute).isEmpty)
    }

    @Test func aRoutineNeedsSeveralDays() {
        var predictor = PrefetchPredictor()
        // Two mornings only.
        predictor.record("frank", atMilliseconds: monday + 8 * hour)
        predictor.record("frank", atMilliseconds: monday + day + 8 * hour)
        #expect(predictor.predictions(nowMilliseconds: monday + 2 * day + 7 * hour + 55 * minute, windowMilliseconds: 10 * minute).isEmpty)
    }

    @Test func localTimeFollowsTheConfiguredOffset() {
        // The same routine at 08:30 local in UTC+2 is at 06:30 UTC.
        var predictor = PrefetchPredictor(configuration: .init(utcOffsetSeconds: 7200))
        for dayIndex in 0..<5 { predictor.record("gina", atMilliseconds: monday + Int64(dayIndex) * day + 6 * hour + 30 * minute) }
        let nextMonday = monday + 7 * day
        #expect(predictor.predictions(nowMilliseconds: nextMonday + 6 * hour + 25 * minute, windowMilliseconds: 10 * minute).first?.reason == .routine)
        #expect(predictor.predictions(nowMilliseconds: nextMonday + 8 * hour + 25 * minute, windowMilliseconds: 10 * minute).isEmpty)
    }
}

@Suite struct PredictorBoundsTests {
    @Test func historyPerSpeakerAndSpeakersAreBounded() {
        var predictor = PrefetchPredictor(configuration: .init(maxSpeakers: 100, historyPerSpeaker: 16))
        for index in 0..<50 { predictor.record("hank", atMilliseconds: monday + Int64(index) * minute) }
        #expect(predictor.statistics.historyEvents == 16)
        for index in 0..<250 { predictor.record("s\(index)", atMilliseconds: monday + day + Int64(index) * 1000) }
        let statistics = predictor.statistics
        #expect(statistics.speakers <= 100)
        #expect(statistics.totalAccesses == 300)
        // The least recently seen went first: hank (a day earlier) and the oldest newcomers.
        #expect(predictor.speakers["hank"] == nil)
        #expect(predictor.speakers["s249"] != nil)
        #expect(statistics.historyEvents == predictor.speakers.values.reduce(0) { $0 + $1.times.count })
    }

    @Test func outOfOrderTimesAreKeptInOrder() {
        var predictor = PrefetchPredictor()
        for time: Int64 in [5, 1, 3, 2, 4] { predictor.record("ivy", atMilliseconds: monday + time * minute) }
        #expect(predictor.speakers["ivy"]?.times == (1...5).map { monday + $0 * minute })
    }

    @Test func predictionsAreOrderedAndLimited() {
        var predictor = PrefetchPredictor()
        for speaker in ["a", "b", "c"] {
            for index in 0..<8 { predictor.record(speaker, atMilliseconds: monday + 9 * hour + Int64(index) * 10 * minute) }
        }
        let all = predictor.predictions(nowMilliseconds: monday + 9 * hour + 76 * minute, windowMilliseconds: 5 * minute)
        #expect(all.map(\.speaker) == ["a", "b", "c"])
        #expect(predictor.predictions(nowMilliseconds: monday + 9 * hour + 76 * minute, windowMilliseconds: 5 * minute, limit: 2).count == 2)
        #expect(predictor.predictions(nowMilliseconds: monday + 9 * hour + 76 * minute, windowMilliseconds: 5 * minute, minimumConfidence: 1.01).isEmpty)
    }

    @Test func dayClockCountsWeekdaysAndWeekends() {
        let clock = DayClock(utcOffsetSeconds: 0)
        let first = clock.day(monday)
        #expect(!clock.isWeekend(first))
        #expect(clock.isWeekend(first + 5) && clock.isWeekend(first + 6) && !clock.isWeekend(first + 7))
        #expect(clock.days(like: first, from: first, to: first + 14) == 10)
        #expect(clock.days(like: first + 5, from: first, to: first + 14) == 4)
        #expect(clock.days(like: first, from: first + 3, to: first + 8) == 3)  // Thu, Fri, Mon
        #expect(clock.day(-1) == -1)
    }
}
