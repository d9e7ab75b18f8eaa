import Foundation
import SwiftProtobuf
import Testing
import VoxTestSupport
@testable import VoxWire

/// The hand-written hot path against SwiftProtobuf: the same bytes out, the same envelopes in,
/// and nothing decoded by hand that SwiftProtobuf would refuse or read differently.
///
/// The random comparisons take seconds in a debug build: they run on a thread of their own
/// (`offCooperativePool`) and hand back what differed, so that they do not starve the
/// timing-sensitive transport tests running beside them.
@Suite struct HotPathTests {
    static func randomFloat(_ rng: inout SplitMix64) -> Float {
        switch rng.next() % 8 {
        case 0: return 0
        case 1: return -0.0
        case 2: return .nan
        case 3: return .infinity
        case 4: return Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
        default: return Float.random(in: -1...1, using: &rng)
        }
    }

    static func randomID(_ rng: inout SplitMix64) -> UInt64 {
        switch rng.next() % 4 {
        case 0: return 0
        case 1: return .max
        case 2: return rng.next() % 200
        default: return rng.next()
        }
    }

    static func randomSpeaker(_ rng: inout SplitMix64) -> String {
        ["", "alice", "speaker-\(rng.next() % 100_000)", "zoë-北京-\u{1F600}", String(repeating: "x", count: 200)][Int(rng.next() % 5)]
    }

    @Test func verifyAndPutAnswersAndPongsEncodeAsSwiftProtobufEncodesThem() async {
        let differences = await offCooperativePool { Self.encodingDifferences(count: 3000) }
        #expect(differences.isEmpty, "\(differences.prefix(5))")
    }

    static func encodingDifferences(count: Int) -> [String] {
        var rng = SplitMix64(state: 11)
        var differences: [String] = []
        for _ in 0..<count {
            var envelope = Envelope()
            envelope.requestID = Self.randomID(&rng)
            switch rng.next() % 4 {
            case 0:
                var pong = Pong()
                pong.payload = Data((0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                envelope.message = .pong(pong)
            case 1:
                var answer = Voxsync_V1_PutResponse()
                answer.version = Self.randomID(&rng)
                answer.origin = Self.randomSpeaker(&rng)
                envelope.message = .putOk(answer)
            default:
                var answer = Voxsync_V1_VerifyResponse()
                answer.score = Self.randomFloat(&rng)
                answer.threshold = Self.randomFloat(&rng)
                answer.accepted = rng.next() % 2 == 0
                answer.source = [.unspecified, .cache, .sqlite][Int(rng.next() % 3)]
                envelope.message = .verifyOk(answer)
            }
            let reference: [UInt8]? = try? envelope.serializedBytes()
            if HotPath.encode(envelope) != reference { differences.append("\(envelope)") }
        }
        return differences
    }

    @Test func otherMessagesAndUnknownFieldsAreLeftToSwiftProtobuf() {
        #expect(HotPath.encode(Envelope(requestID: 1, .ping(Ping()))) == nil)
        var answer = Voxsync_V1_VerifyResponse()
        answer.source = .UNRECOGNIZED(300)
        #expect(HotPath.encode(Envelope(requestID: 1, .verifyOk(answer))) == nil, "an enum value outside one varint byte")
        var withUnknown = Envelope(requestID: 1, .pong(Pong()))
        withUnknown.unknownFields = try! Envelope(serializedBytes: [0x98, 0x06, 0x01] as [UInt8]).unknownFields
        #expect(!withUnknown.unknownFields.data.isEmpty)
        #expect(HotPath.encode(withUnknown) == nil)
    }

    @Test func verifiesPutsAndPingsDecodeAsSwiftProtobufDecodesThem() async {
        let differences = await offCooperativePool { Self.decodingDifferences(count: 3000) }
        #expect(differences.isEmpty, "\(differences.prefix(5))")
    }

    static func decodingDifferences(count: Int) -> [String] {
        var rng = SplitMix64(state: 12)
        var differences: [String] = []
        for _ in 0..<count {
            var envelope = Envelope()
            envelope.requestID = Self.randomID(&rng)
            var handByHand = true
            switch rng.next() % 6 {
            case 0:
                var ping = Ping()
                ping.payload = Data((0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                envelope.message = .ping(ping)
            case 1, 2:
                let (put, bookkeeping) = Self.randomPut(&rng)
                handByHand = !bookkeeping
                envelope.message = .put(put)
            default:
                var verify = Voxsync_V1_VerifyRequest()
                verify.speakerID = Self.randomSpeaker(&rng)
                switch rng.next() % 4 {
                case 0: break  // no probe
                case 1: verify.probe = Embedding()  // present, empty
                default: verify.probe.values = (0..<Int(rng.next() % 200)).map { _ in Self.randomFloat(&rng) }
                }
                if rng.next() % 3 == 0 { verify.probe.model = rng.next() % 2 == 0 ? "ecapa-tdnn-192" : Self.randomSpeaker(&rng) }
                envelope.message = .verify(verify)
            }
            if !handByHand {
                // The store's bookkeeping in a put: left to SwiftProtobuf.
                if let bytes: [UInt8] = try? envelope.serializedBytes(), bytes.withUnsafeBytes({ HotPath.decode($0) }) != nil {
                    differences.append("decoded by hand despite its bookkeeping: \(envelope)")
                }
                continue
            }
            guard let bytes: [UInt8] = try? envelope.serializedBytes(),
                  let fast = bytes.withUnsafeBytes({ HotPath.decode($0) }),
                  let reference = try? Envelope(serializedBytes: bytes),
                  Self.same(fast, reference)
            else {
                differences.append("\(envelope)")
                continue
            }
        }
        return differences
    }

    static func randomEmbedding(_ rng: inout SplitMix64) -> Embedding {
        var embedding = Embedding()
        if rng.next() % 4 != 0 { embedding.values = (0..<Int(rng.next() % 200)).map { _ in Self.randomFloat(&rng) } }
        if rng.next() % 3 == 0 { embedding.model = rng.next() % 2 == 0 ? "ecapa-tdnn-192" : Self.randomSpeaker(&rng) }
        return embedding
    }

    /// A put with every field a client sets, each sometimes left out; true when it also carries
    /// the store's bookkeeping (fields 6–9), which a client has no reason to send.
    static func randomPut(_ rng: inout SplitMix64) -> (Voxsync_V1_PutRequest, bookkeeping: Bool) {
        var put = Voxsync_V1_PutRequest()
        if rng.next() % 8 != 0 {
            var profile = Profile()
            profile.speakerID = Self.randomSpeaker(&rng)
            if rng.next() % 5 != 0 { profile.embedding = Self.randomEmbedding(&rng) }
            profile.samples = (0..<Int(rng.next() % 4)).map { _ in Self.randomEmbedding(&rng) }
            if rng.next() % 2 == 0 { profile.threshold = Self.randomFloat(&rng) }
            if rng.next() % 3 == 0 { profile.metadata = rng.next() % 2 == 0 ? "{\"room\": \"kitchen\"}" : Self.randomSpeaker(&rng) }
            put.profile = profile
        }
        if rng.next() % 3 == 0 { put.expectedVersion = Self.randomID(&rng) }
        guard rng.next() % 6 == 0 else { return (put, false) }
        switch rng.next() % 4 {
        case 0: put.profile.version = rng.next() | 1
        case 1: put.profile.origin = "instance-a"
        case 2: put.profile.updatedAtUnixMs = -1
        default: put.profile.deleted = true
        }
        return (put, true)
    }

    /// A put in its canonical encoding, mutated: whatever the hot path decodes, SwiftProtobuf
    /// decodes the same way.
    @Test func mutatedPutsAreDecodedAsSwiftProtobufDecodesThemOrLeftToIt() async throws {
        var put = Voxsync_V1_PutRequest()
        put.profile.speakerID = "alice"
        put.profile.embedding.values = (0..<8).map { Float($0) / 8 }
        put.profile.embedding.model = "ecapa-tdnn-192"
        put.profile.samples = [Embedding(), Embedding()]
        put.profile.samples[0].values = [0.5, -0.5]
        put.profile.samples[1].values = [0.25]
        put.profile.threshold = 0.3
        put.profile.metadata = "{}"
        put.expectedVersion = 0
        let canonical: [UInt8] = try Envelope(requestID: 302, .put(put)).serializedBytes()
        let fast = try #require(canonical.withUnsafeBytes { HotPath.decode($0) })
        #expect(fast.put == put, "the canonical put is decoded by hand, whole")
        let (handled, differences) = await offCooperativePool { Self.mutationDifferences(canonical, count: 10_000) }
        #expect(differences.isEmpty, "\(differences.prefix(5))")
        #expect(handled > 500, "the mutations keep some frames canonical")
        // Samples out of their place (after the threshold) are valid protobuf, not canonical.
        let body: [UInt8] = [0x0a, 0x05] + Array("alice".utf8) + [0x25, 0x00, 0x00, 0x80, 0x3f] + [0x1a, 0x00]
        let reordered: [UInt8] = [0x52, UInt8(body.count + 2), 0x0a, UInt8(body.count)] + body
        #expect(reordered.withUnsafeBytes { HotPath.decode($0) } == nil)
        #expect(try Envelope(serializedBytes: reordered).put.profile.samples.count == 1)
    }

    /// Equal, with NaN payloads compared by bit pattern.
    static func same(_ a: Envelope, _ b: Envelope) -> Bool {
        let bytesA: [UInt8]? = try? a.serializedBytes()
        let bytesB: [UInt8]? = try? b.serializedBytes()
        return bytesA != nil && bytesA == bytesB && a.message?.name == b.message?.name
    }

    @Test func anythingOutsideTheCanonicalLayoutIsDecodedBySwiftProtobufOrNotAtAll() async throws {
        var verify = Voxsync_V1_VerifyRequest()
        verify.speakerID = "alice"
        verify.probe.values = (0..<8).map { Float($0) / 8 }
        let canonical: [UInt8] = try Envelope(requestID: 300, .verify(verify)).serializedBytes()
        // Valid protobuf that is not canonical: fields reversed, an unknown field, floats
        // not packed. The hot path declines; SwiftProtobuf decodes them.
        let reordered: [UInt8] = [0x72, 0x07, 0x0a, 0x05] + Array("alice".utf8) + [0x08, 0xac, 0x02]
        let unknown: [UInt8] = canonical + [0x98, 0x06, 0x01]
        let unpacked: [UInt8] = [0x08, 0x01, 0x72, 0x07, 0x12, 0x05, 0x0d, 0x00, 0x00, 0x80, 0x3f]
        for bytes in [reordered, unknown, unpacked] {
            #expect(bytes.withUnsafeBytes { HotPath.decode($0) } == nil)
            _ = try Envelope(serializedBytes: bytes)
        }
        // Mutations of a canonical frame — flipped bytes, cut short, extended: whatever the hot
        // path decodes, SwiftProtobuf decodes the same way.
        let (handled, differences) = await offCooperativePool { Self.mutationDifferences(canonical, count: 10_000) }
        #expect(differences.isEmpty, "\(differences.prefix(5))")
        #expect(handled > 500, "the mutations keep some frames canonical")
        // Invalid UTF-8 in the speaker id: SwiftProtobuf refuses it, and so the hot path
        // leaves it alone.
        let badText: [UInt8] = [0x72, 0x04, 0x0a, 0x02, 0xc3, 0x28]
        #expect(badText.withUnsafeBytes { HotPath.decode($0) } == nil)
        #expect((try? Envelope(serializedBytes: badText)) == nil)
    }

    /// The probe's model tag: canonical after the values; before them, twice, not UTF-8 or with
    /// another wire type, the hot path leaves the frame to SwiftProtobuf.
    @Test func theProbesModelTagIsDecodedOnlyInItsCanonicalPlace() async throws {
        func verifyFrame(_ embedding: [UInt8]) -> [UInt8] {
            let body: [UInt8] = [0x0a, 0x05] + Array("alice".utf8) + [0x12, UInt8(embedding.count)] + embedding
            return [0x72, UInt8(body.count)] + body
        }
        let one: [UInt8] = [0x0a, 0x04, 0x00, 0x00, 0x80, 0x3f]  // values: [1.0]
        let canonical = verifyFrame(one + [0x12, 0x01, 0x6d])
        let fast = canonical.withUnsafeBytes { HotPath.decode($0) }
        guard case .verify(let decoded)? = fast?.message else {
            Issue.record("the canonical frame with a model tag was not decoded")
            return
        }
        #expect(decoded.probe.model == "m" && decoded.probe.values == [1])
        #expect(Self.same(fast!, try Envelope(serializedBytes: canonical)))
        for bytes in [verifyFrame([0x12, 0x01, 0x6d] + one), verifyFrame(one + [0x12, 0x01, 0x6d, 0x12, 0x01, 0x6e])] {
            #expect(bytes.withUnsafeBytes { HotPath.decode($0) } == nil)
            _ = try Envelope(serializedBytes: bytes)
        }
        let badModel = verifyFrame(one + [0x12, 0x02, 0xc3, 0x28])
        #expect(badModel.withUnsafeBytes { HotPath.decode($0) } == nil)
        #expect((try? Envelope(serializedBytes: badModel)) == nil)
        #expect(verifyFrame(one + [0x10, 0x01]).withUnsafeBytes { HotPath.decode($0) } == nil, "a varint where the tag's string belongs")
        var tagged = Voxsync_V1_VerifyRequest()
        tagged.speakerID = "alice"
        tagged.probe.values = (0..<8).map { Float($0) / 8 }
        tagged.probe.model = "ecapa-tdnn-192"
        let taggedBytes: [UInt8] = try Envelope(requestID: 301, .verify(tagged)).serializedBytes()
        let (handled, differences) = await offCooperativePool { Self.mutationDifferences(taggedBytes, count: 5_000) }
        #expect(differences.isEmpty, "\(differences.prefix(5))")
        #expect(handled > 250, "the mutations keep some frames canonical")
    }

    static func mutationDifferences(_ canonical: [UInt8], count: Int) -> (handled: Int, differences: [String]) {
        var rng = SplitMix64(state: 13)
        var handled = 0
        var differences: [String] = []
        for _ in 0..<count {
            var bytes = canonical
            switch rng.next() % 3 {
            case 0: bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
            case 1: bytes.removeLast(Int(rng.next() % UInt64(bytes.count)))
            default: bytes.append(UInt8(truncatingIfNeeded: rng.next()))
            }
            guard let fast = bytes.withUnsafeBytes({ HotPath.decode($0) }) else { continue }
            handled += 1
            guard let reference = try? Envelope(serializedBytes: bytes) else {
                differences.append("hot path decoded bytes SwiftProtobuf refuses: \(bytes)")
                continue
            }
            if !same(fast, reference) { differences.append("\(bytes)") }
        }
        return (handled, differences)
    }
}
