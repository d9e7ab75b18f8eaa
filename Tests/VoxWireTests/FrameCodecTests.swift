import Foundation
import NIOCore
import Testing
import VoxWire

@Suite struct FrameCodecTests {
    let envelopes = oneOfEveryMessage()

    @Test func everyMessageRoundTrips() throws {
        #expect(Set(envelopes.compactMap { $0.message?.name }).count == 33, "one sample per oneof case")
        let stream = try encodeFrames(envelopes)
        let decoded = try decodeAll(stream, cuts: [])
        #expect(decoded == envelopes)
    }

    @Test func decodesFedByteByByte() throws {
        let stream = try encodeFrames(envelopes)
        let decoded = try decodeAll(stream, cuts: Array(1..<stream.readableBytes))
        #expect(decoded == envelopes)
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func decodesShuffledSplits(seed: UInt64) throws {
        let stream = try encodeFrames(envelopes)
        var rng = SplitMix64(state: seed)
        let cutCount = Int.random(in: 1...50, using: &rng)
        let cuts = (0..<cutCount).map { _ in Int.random(in: 1..<stream.readableBytes, using: &rng) }
        let decoded = try decodeAll(stream, cuts: Array(Set(cuts)).sorted())
        #expect(decoded == envelopes)
    }

    @Test func shortReadConsumesNothing() throws {
        let stream = try encodeFrames([envelopes[0]])
        var decoder = FrameDecoder()
        for length in [0, 3, 4, 5, stream.readableBytes - 1] {
            var partial = stream.getSlice(at: 0, length: length)!
            #expect(try decoder.decode(&partial) == nil)
            #expect(partial.readerIndex == 0 && partial.readableBytes == length)
        }
    }

    @Test func compressesOnlyAtThresholdAndOnlyWhenSmaller() throws {
        var config = WireConfiguration()
        config.compressionThreshold = 1024
        var ping = Ping()

        // Below the threshold: raw, however compressible.
        ping.payload = Data(repeating: 0x61, count: 900)
        let small = try encodeFrames([Envelope(requestID: 1, .ping(ping))], configuration: config)
        #expect(small.getInteger(at: 4, as: UInt8.self) == 0)

        // At the threshold and compressible: compressed and much smaller.
        ping.payload = Data(repeating: 0x61, count: 4096)
        let big = try encodeFrames([Envelope(requestID: 1, .ping(ping))], configuration: config)
        #expect(big.getInteger(at: 4, as: UInt8.self) == 1)
        #expect(big.readableBytes < 200)

        // Random bytes do not shrink: sent raw.
        var rng = SplitMix64(state: 3)
        ping.payload = Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let noise = try encodeFrames([Envelope(requestID: 1, .ping(ping))], configuration: config)
        #expect(noise.getInteger(at: 4, as: UInt8.self) == 0)

        var decoder = FrameDecoder(configuration: config)
        for buffer in [small, big, noise] {
            var copy = buffer
            #expect(try decoder.decode(&copy) != nil)
        }
    }

    @Test func encoderRefusesMessagesOverTheLimit() {
        var config = WireConfiguration()
        config.maxFrameBytes = 1000
        config.compressionThreshold = .max
        var ping = Ping()
        ping.payload = Data(repeating: 1, count: 2000)
        #expect(throws: WireError.self) { try encodeFrames([Envelope(requestID: 1, .ping(ping))], configuration: config) }
    }

    @Test func lengthOverTheLimitFailsBeforeTheBodyArrives() {
        var config = WireConfiguration()
        config.maxFrameBytes = 1 << 20
        var decoder = FrameDecoder(configuration: config)
        var header = ByteBuffer()
        header.writeInteger(UInt32((1 << 20) + 1), endianness: .big)
        #expect(throws: WireError(.frameTooLarge, "frame length 1048577 is over the limit of 1048576 bytes")) {
            try decoder.decode(&header)
        }
    }

    @Test func emptyFrameIsRefused() {
        var decoder = FrameDecoder()
        var frame = ByteBuffer(bytes: [0, 0, 0, 0])
        #expect(throws: WireError.self) { try decoder.decode(&frame) }
    }

    @Test(arguments: [UInt8(0x02), 0x04, 0x80, 0xFF])
    func reservedFlagBitsAreRefused(flags: UInt8) throws {
        var decoder = FrameDecoder()
        var frame = rawFrame(flags: flags, body: [0x08, 0x01])
        let error = #expect(throws: WireError.self) { try decoder.decode(&frame) }
        #expect(error?.code == .reservedFlags)
    }

    @Test func bodyThatIsNotAnEnvelopeIsRefused() {
        var decoder = FrameDecoder()
        var frame = rawFrame(flags: 0, body: [0xFF, 0xFF, 0xFF])
        let error = #expect(throws: WireError.self) { try decoder.decode(&frame) }
        #expect(error?.code == .invalidEnvelope)
    }
}
