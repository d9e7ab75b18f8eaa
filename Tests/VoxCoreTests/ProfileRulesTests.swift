import Testing
import VoxCore

@Suite struct ProfileRulesTests {
    let rules = ProfileRules(dimension: 4)

    func violation(_ body: () throws -> Void) -> ProfileRules.Violation? {
        do {
            try body()
            return nil
        } catch let violation as ProfileRules.Violation {
            return violation
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test func speakerIDs() {
        #expect(violation { try rules.checkSpeakerID("alice") } == nil)
        #expect(violation { try rules.checkSpeakerID("Zoë Ångström 🎙") } == nil)
        #expect(violation { try rules.checkSpeakerID(String(repeating: "a", count: 256)) } == nil)
        #expect(violation { try rules.checkSpeakerID("") }?.message == "must not be empty")
        #expect(violation { try rules.checkSpeakerID(String(repeating: "a", count: 257)) }?.message.contains("257 bytes") == true)
        // 86 three-byte characters: 258 bytes though only 86 characters.
        #expect(violation { try rules.checkSpeakerID(String(repeating: "€", count: 86)) }?.field == "speaker_id")
        #expect(violation { try rules.checkSpeakerID("bob\n") }?.message.contains("U+A") == true)
        #expect(violation { try rules.checkSpeakerID("a\u{0}b") }?.kind == .invalidArgument)
    }

    @Test func vectors() {
        #expect(violation { try rules.checkVector([1, 0, 0, 0], field: "embedding") } == nil)
        let short = violation { try rules.checkVector([1, 0, 0], field: "embedding") }
        #expect(short?.kind == .dimensionMismatch)
        #expect(short?.message == "has 3 values; this store's embeddings have exactly 4")
        #expect(violation { try rules.checkVector([1, .nan, 0, 0], field: "probe") }?.message == "value 1 is nan; every value must be finite")
        #expect(violation { try rules.checkVector([1, 0, .infinity, 0], field: "probe") }?.field == "probe")
        #expect(violation { try rules.checkVector([0, 0, 0, 0], field: "embedding") }?.message.contains("zero norm") == true)
        #expect(violation { try rules.checkVector([3e38, 3e38, 0, 0], field: "embedding") }?.message.contains("overflows") == true)
    }

    @Test func modelTags() {
        #expect(rules.model == ProfileRules.defaultModel)
        #expect(violation { try rules.checkModel("", field: "probe.model") } == nil, "an empty tag is not checked")
        #expect(violation { try rules.checkModel("ecapa-tdnn-192", field: "probe.model") } == nil)
        let other = violation { try rules.checkModel("wavlm-base-plus", field: "samples[2].model") }
        #expect(other?.field == "samples[2].model" && other?.kind == .invalidArgument)
        #expect(other?.message.contains("'wavlm-base-plus'") == true && other?.message.contains("'ecapa-tdnn-192'") == true)
        let long = violation { try rules.checkModel(String(repeating: "x", count: 100_000), field: "embedding.model") }
        #expect(long != nil && long!.message.utf8.count < 400, "a huge tag is not echoed whole")
        let oneCharacter = "e" + String(repeating: "\u{301}", count: 100_000)  // one Character, 100 001 scalars
        let combining = violation { try rules.checkModel(oneCharacter, field: "probe.model") }
        #expect(combining != nil && combining!.message.utf8.count < 600, "nor one made of a single huge Character")
        #expect(ProfileRules.checkModelTag("ecapa-tdnn-192") == nil)
        #expect(ProfileRules.checkModelTag("speechbrain/spkrec-ecapa-voxceleb:v1.0") == nil)
        #expect(ProfileRules.checkModelTag("")?.contains("1-64 bytes") == true)
        #expect(ProfileRules.checkModelTag(String(repeating: "a", count: 65))?.contains("got 65") == true)
        #expect(ProfileRules.checkModelTag("two words")?.contains("letters, digits") == true)
    }

    @Test func samples() {
        #expect(violation { try rules.checkSamples([[1, 0, 0, 0], [0, 1, 0, 0]]) } == nil)
        #expect(violation { try rules.checkSamples([[1, 0, 0, 0], [0, 1, 0]]) }?.field == "samples[1]")
        let many = Array(repeating: [Float](repeating: 1, count: 4), count: 65)
        #expect(violation { try rules.checkSamples(many) }?.message.contains("65 vectors") == true)
    }

    @Test func thresholds() {
        for good: Float in [0, 0.25, 1, -0.5] { #expect(violation { try rules.checkThreshold(good) } == nil) }
        for bad: Float in [-1, 1.01, .nan, .infinity] { #expect(violation { try rules.checkThreshold(bad) }?.field == "threshold") }
    }

    @Test func metadata() {
        #expect(violation { try rules.checkMetadata(String(repeating: "x", count: 65_536)) } == nil)
        #expect(violation { try rules.checkMetadata(String(repeating: "x", count: 65_537)) }?.message.contains("65537 bytes") == true)
    }
}
