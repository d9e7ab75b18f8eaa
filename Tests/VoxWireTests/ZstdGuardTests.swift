import Foundation
import NIOCore
import Testing
import VoxTestSupport
import VoxWire

/// The decompression guard: a compressed body must declare its size, within the limit, and be
/// exactly one zstd frame.
@Suite struct ZstdGuardTests {
    private func envelopeBody(payloadBytes: Int) throws -> [UInt8] {
        var ping = Ping()
        ping.payload = Data(repeating: 0x61, count: payloadBytes)
        return try Envelope(requestID: 1, .ping(ping)).serializedBytes()
    }

    @Test func frameWithoutDeclaredSizeIsRefused() throws {
        var decoder = FrameDecoder()
        var frame = rawFrame(flags: 1, body: zstdFrame(try envelopeBody(payloadBytes: 4000), declareSize: false))
        let error = #expect(throws: WireError.self) { try decoder.decode(&frame) }
        #expect(error?.code == .compressedSizeUnknown)
    }

    @Test func decompressionBombIsRefusedBeforeInflating() throws {
        var config = WireConfiguration()
        config.maxFrameBytes = 1 << 20
        // 64 MiB of one byte compresses to a few KiB: small on the wire, huge once inflated.
        let bomb = zstdFrame([UInt8](repeating: 0, count: 64 << 20), declareSize: true)
        #expect(bomb.count < 8 << 10)
        var decoder = FrameDecoder(configuration: config)
        var frame = rawFrame(flags: 1, body: bomb)
        let error = #expect(throws: WireError.self) { try decoder.decode(&frame) }
        #expect(error?.code == .compressedSizeTooLarge)
        #expect(error?.message.contains("67108864") == true)
    }

    @Test func sizeJustAtTheLimitIsAccepted() throws {
        let body = try envelopeBody(payloadBytes: 10_000)
        var config = WireConfiguration()
        config.maxFrameBytes = body.count
        var decoder = FrameDecoder(configuration: config)
        var frame = rawFrame(flags: 1, body: zstdFrame(body, declareSize: true))
        #expect(try decoder.decode(&frame)?.ping.payload.count == 10_000)
    }

    @Test func trailingBytesAfterTheZstdFrameAreRefused() throws {
        let one = zstdFrame(try envelopeBody(payloadBytes: 2000), declareSize: true)
        var decoder = FrameDecoder()
        var frame = rawFrame(flags: 1, body: one + one)
        let error = #expect(throws: WireError.self) { try decoder.decode(&frame) }
        #expect(error?.code == .compressedBodyInvalid)
    }

    @Test func garbageWithTheCompressedFlagIsRefused() {
        var decoder = FrameDecoder()
        var frame = rawFrame(flags: 1, body: [1, 2, 3, 4, 5, 6, 7, 8])
        let error = #expect(throws: WireError.self) { try decoder.decode(&frame) }
        #expect(error?.code == .compressedBodyInvalid)
    }
}
