import CZstd
import Foundation
import NIOCore
import Testing
import VoxWire

/// The decompression guard: a compressed body must declare its size, within the limit, and be
/// exactly one zstd frame.
@Suite struct ZstdGuardTests {
    private func compressed(_ input: [UInt8], declareSize: Bool) -> [UInt8] {
        let context = ZSTD_createCCtx()!
        defer { ZSTD_freeCCtx(context) }
        ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, declareSize ? 1 : 0)
        let bound = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { destination in
                ZSTD_compress2(context, destination.baseAddress, bound, source.baseAddress, source.count)
            }
        }
        precondition(ZSTD_isError(written) == 0)
        return Array(output.prefix(written))
    }

    private func envelopeBody(payloadBytes: Int) throws -> [UInt8] {
        var ping = Ping()
        ping.payload = Data(repeating: 0x61, count: payloadBytes)
        return try Envelope(requestID: 1, .ping(ping)).serializedBytes()
    }

    @Test func frameWithoutDeclaredSizeIsRefused() throws {
        var decoder = FrameDecoder()
        var frame = rawFrame(flags: 1, body: compressed(try envelopeBody(payloadBytes: 4000), declareSize: false))
        let error = #expect(throws: WireError.self) { try decoder.decode(&frame) }
        #expect(error?.code == .compressedSizeUnknown)
    }

    @Test func decompressionBombIsRefusedBeforeInflating() throws {
        var config = WireConfiguration()
        config.maxFrameBytes = 1 << 20
        // 64 MiB of one byte compresses to a few KiB: small on the wire, huge once inflated.
        let bomb = compressed([UInt8](repeating: 0, count: 64 << 20), declareSize: true)
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
        var frame = rawFrame(flags: 1, body: compressed(body, declareSize: true))
        #expect(try decoder.decode(&frame)?.ping.payload.count == 10_000)
    }

    @Test func trailingBytesAfterTheZstdFrameAreRefused() throws {
        let one = compressed(try envelopeBody(payloadBytes: 2000), declareSize: true)
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
