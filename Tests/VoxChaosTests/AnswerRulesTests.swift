import Testing
import VoxChaos

@Suite struct AnswerRulesTests {
    let dimension = 8
    let s = "chaos-0-1"
    let t = "chaos-0-2"
    let stranger = "chaos-1-1"

    func profile(_ id: String, seq: Int, version: UInt64) -> ObservedRow {
        ObservedRow(speakerID: id, version: version, deleted: false, metadata: ChaosContent.metadata(speaker: id, seq: seq),
                    threshold: ChaosContent.threshold, embedding: ChaosContent.embedding(speaker: id, seq: seq, dimension: dimension))
    }

    func kinds(_ judgement: AnswerRules.Judgement) -> [AnswerRules.Kind] { judgement.violations.map(\.kind) }

    @Test func ownersAreReadFromTheSpeakerID() {
        #expect(ChaosContent.client(ofSpeaker: "chaos-12-7") == 12)
        #expect(ChaosContent.client(ofSpeaker: ChaosContent.speakerID(client: 3, index: 0)) == 3)
        #expect(ChaosContent.client(ofSpeaker: "alice") == nil && ChaosContent.client(ofSpeaker: "chaos-x-1") == nil)
    }

    // MARK: Identify

    @Test func identifyWithALiveSpeakersContentMustFindItFirstAtOne() {
        var ledger = WriteLedger()
        ledger.putAcknowledged(s, seq: 3, version: 30)
        let good = AnswerRules.identify(ledger, client: 0, speaker: s, seq: 3, matches: [
            .init(speakerID: s, score: 0.99999), .init(speakerID: stranger, score: 0.2),
        ])
        #expect(good.violations.isEmpty && good.checked.contains(.identifyLiveFirst))
        // Another speaker first, S second, a low score, or no match at all: each a violation.
        #expect(kinds(AnswerRules.identify(ledger, client: 0, speaker: s, seq: 3, matches: [
            .init(speakerID: stranger, score: 0.3), .init(speakerID: s, score: 0.2),
        ])) == [.identifyLiveFirst])
        #expect(kinds(AnswerRules.identify(ledger, client: 0, speaker: s, seq: 3, matches: [.init(speakerID: s, score: 0.9)])) == [.identifyLiveFirst])
        let empty = AnswerRules.identify(ledger, client: 0, speaker: s, seq: 3, matches: [])
        #expect(kinds(empty) == [.identifyLiveFirst] && empty.violations[0].detail.contains("no match"))
        // Other content of S (an older write): no rule about S's rank.
        #expect(!AnswerRules.identify(ledger, client: 0, speaker: s, seq: 2, matches: []).checked.contains(.identifyLiveFirst))
    }

    @Test func aDeletedOrNeverWrittenOwnSpeakerMustNotBeMatched() {
        var ledger = WriteLedger()
        ledger.putAcknowledged(s, seq: 3, version: 30)
        ledger.deleteAcknowledged(s, version: 31, existed: true)
        let judgement = AnswerRules.identify(ledger, client: 0, speaker: s, seq: 3, matches: [.init(speakerID: s, score: 1)])
        #expect(kinds(judgement) == [.identifyNoDeleted])
        #expect(judgement.violations[0].detail.contains("v31"))
        let clean = AnswerRules.identify(ledger, client: 0, speaker: s, seq: 3, matches: [.init(speakerID: stranger, score: 0.1)])
        #expect(clean.violations.isEmpty && clean.checked == [.identifyNoDeleted])
        // Any own deleted or never written speaker among the matches, not only the probed one.
        #expect(kinds(AnswerRules.identify(ledger, client: 0, speaker: t, seq: 1, matches: [
            .init(speakerID: stranger, score: 0.4), .init(speakerID: s, score: 0.1), .init(speakerID: "chaos-0-9", score: 0.05),
        ])) == [.identifyNoDeleted, .identifyNoDeleted])
        // Another client's speakers are its own business.
        #expect(AnswerRules.identify(ledger, client: 1, speaker: stranger, seq: 1, matches: [.init(speakerID: s, score: 0.1)]).violations.isEmpty)
    }

    @Test func aLiveSpeakerMustNotMatchContentItNoLongerHas() {
        var ledger = WriteLedger()
        ledger.putAcknowledged(s, seq: 2, version: 20)
        ledger.putAcknowledged(s, seq: 3, version: 30)
        #expect(kinds(AnswerRules.identify(ledger, client: 0, speaker: s, seq: 2, matches: [.init(speakerID: s, score: 1)])) == [.identifyNoStale])
        let clean = AnswerRules.identify(ledger, client: 0, speaker: s, seq: 2, matches: [.init(speakerID: s, score: 0.1)])
        #expect(clean.violations.isEmpty && clean.checked == [.identifyNoStale])
    }

    @Test func aSpeakerInDoubtIsNotJudgedUntilTheNextAcknowledgedWrite() {
        var ledger = WriteLedger()
        ledger.putAcknowledged(s, seq: 3, version: 30)
        ledger.deleteUncertain(s)   // may have landed: S may be gone
        #expect(AnswerRules.identify(ledger, client: 0, speaker: s, seq: 3, matches: []) == .init())
        #expect(AnswerRules.verify(ledger, speaker: s, seq: 3, answer: .notFound) == .init())
        ledger.deleteAcknowledged(s, version: 32, existed: true)
        ledger.putUncertain(s, seq: 4)   // may have landed: S may be back
        #expect(AnswerRules.identify(ledger, client: 0, speaker: s, seq: 4, matches: [.init(speakerID: s, score: 1)]).violations.isEmpty)
        #expect(AnswerRules.verify(ledger, speaker: s, seq: 4, answer: .scored(score: 1, accepted: true)).violations.isEmpty)
        ledger.putAcknowledged(s, seq: 5, version: 40)   // the doubt is cleared
        #expect(kinds(AnswerRules.identify(ledger, client: 0, speaker: s, seq: 5, matches: [])) == [.identifyLiveFirst])
        #expect(kinds(AnswerRules.identify(ledger, client: 0, speaker: s, seq: 4, matches: [.init(speakerID: s, score: 1)])) == [.identifyNoStale])
    }

    // MARK: Verify

    @Test func verifyOfALiveSpeakerWithItsContentIsAcceptedAtOne() {
        var ledger = WriteLedger()
        ledger.putAcknowledged(s, seq: 3, version: 30)
        let good = AnswerRules.verify(ledger, speaker: s, seq: 3, answer: .scored(score: 0.99999, accepted: true))
        #expect(good.violations.isEmpty && good.checked == [.verifyLiveAccepted])
        #expect(kinds(AnswerRules.verify(ledger, speaker: s, seq: 3, answer: .notFound)) == [.verifyLiveAccepted])
        #expect(kinds(AnswerRules.verify(ledger, speaker: s, seq: 3, answer: .scored(score: 0.5, accepted: true))) == [.verifyLiveAccepted])
        #expect(kinds(AnswerRules.verify(ledger, speaker: s, seq: 3, answer: .scored(score: 1, accepted: false))) == [.verifyLiveAccepted])
        // Older content: found, and not at ≈ 1 (the store would then hold the older write).
        #expect(AnswerRules.verify(ledger, speaker: s, seq: 1, answer: .scored(score: 0.1, accepted: false)).violations.isEmpty)
        #expect(kinds(AnswerRules.verify(ledger, speaker: s, seq: 1, answer: .scored(score: 1, accepted: true))) == [.verifyLiveOtherContent])
        #expect(kinds(AnswerRules.verify(ledger, speaker: s, seq: 1, answer: .notFound)) == [.verifyLiveOtherContent])
    }

    @Test func verifyOfADeletedOrNeverWrittenSpeakerIsNotFound() {
        var ledger = WriteLedger()
        let never = AnswerRules.verify(ledger, speaker: s, seq: 1, answer: .notFound)
        #expect(never.violations.isEmpty && never.checked == [.verifyDeletedNotFound])
        #expect(kinds(AnswerRules.verify(ledger, speaker: s, seq: 1, answer: .scored(score: 0.2, accepted: false))) == [.verifyDeletedNotFound])
        ledger.putAcknowledged(s, seq: 3, version: 30)
        ledger.deleteAcknowledged(s, version: 31, existed: true)
        #expect(AnswerRules.verify(ledger, speaker: s, seq: 3, answer: .notFound).violations.isEmpty)
        let resurrected = AnswerRules.verify(ledger, speaker: s, seq: 3, answer: .scored(score: 1, accepted: true))
        #expect(kinds(resurrected) == [.verifyDeletedNotFound] && resurrected.violations[0].detail.contains("delete"))
    }

    // MARK: Get

    @Test func getAnswersTheAcknowledgedProfileOrANewerUnansweredPut() {
        var ledger = WriteLedger()
        #expect(AnswerRules.get(ledger, speaker: s, row: nil, dimension: dimension).violations.isEmpty)
        ledger.putAcknowledged(s, seq: 2, version: 20)
        #expect(AnswerRules.get(ledger, speaker: s, row: profile(s, seq: 2, version: 20), dimension: dimension).violations.isEmpty)
        // Older, other content at the right version, another speaker's profile, not found.
        #expect(kinds(AnswerRules.get(ledger, speaker: s, row: profile(s, seq: 1, version: 10), dimension: dimension)) == [.getAcknowledged])
        #expect(kinds(AnswerRules.get(ledger, speaker: s, row: profile(s, seq: 1, version: 20), dimension: dimension)) == [.getAcknowledged])
        var other = profile(t, seq: 2, version: 20)
        other.speakerID = s   // the load files a get's answer under the id it asked for
        #expect(kinds(AnswerRules.get(ledger, speaker: s, row: other, dimension: dimension)) == [.getAcknowledged])
        #expect(kinds(AnswerRules.get(ledger, speaker: s, row: nil, dimension: dimension)) == [.getAcknowledged])
        // An unanswered put may have landed, newer and exactly; an unanswered delete may explain not found.
        ledger.putUncertain(s, seq: 3)
        #expect(AnswerRules.get(ledger, speaker: s, row: profile(s, seq: 3, version: 21), dimension: dimension).violations.isEmpty)
        #expect(kinds(AnswerRules.get(ledger, speaker: s, row: nil, dimension: dimension)) == [.getAcknowledged], "a put in doubt does not explain not found")
        ledger.deleteUncertain(s)
        #expect(AnswerRules.get(ledger, speaker: s, row: nil, dimension: dimension).violations.isEmpty)
    }

    @Test func getOfADeletedSpeakerIsNotFound() {
        var ledger = WriteLedger()
        ledger.putAcknowledged(s, seq: 2, version: 20)
        ledger.deleteAcknowledged(s, version: 21, existed: true)
        let gone = AnswerRules.get(ledger, speaker: s, row: nil, dimension: dimension)
        #expect(gone.violations.isEmpty && gone.checked == [.getDeletedNotFound])
        #expect(kinds(AnswerRules.get(ledger, speaker: s, row: profile(s, seq: 2, version: 20), dimension: dimension)) == [.getDeletedNotFound])
    }
}
