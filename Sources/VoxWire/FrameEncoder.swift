import NIOCore
import SwiftProtobuf

/// Turns envelopes into frames: `u32 length (big-endian) | u8 flags | body`.
///
/// The body is the serialized `Envelope`, zstd-compressed when it is at least
/// `compressionThreshold` bytes and compression makes it smaller.
public struct FrameEncoder {
    public let configuration: WireConfiguration
    private var compressor: ZstdCompressor?

    public init(configuration: WireConfiguration = .init()) {
        self.configuration = configuration
    }

    /// Appends one frame carrying `envelope` to `buffer`.
    public mutating func encode(_ envelope: Envelope, into buffer: inout ByteBuffer) throws(WireError) {
        let body: [UInt8]
        do {
            // A verify or put answer or a pong is encoded by hand, bytes as SwiftProtobuf's (`HotPath`).
            body = try HotPath.encode(envelope) ?? envelope.serializedBytes()
        } catch {
            throw WireError(.invalidEnvelope, "the message cannot be serialized: \(error)")
        }
        try self.encode(body: body, into: &buffer)
    }

    /// Appends one frame around an already-serialized envelope.
    public mutating func encode(body: [UInt8], into buffer: inout ByteBuffer) throws(WireError) {
        var flags: FrameFlags = []
        var payload = body
        if body.count >= configuration.compressionThreshold {
            if compressor == nil { compressor = ZstdCompressor() }
            let compressed = body.withUnsafeBytes { compressor!.compress($0, level: configuration.compressionLevel) }
            if compressed.count < body.count {
                payload = compressed
                flags.insert(.compressed)
            }
        }
        let length = payload.count + 1
        guard length <= configuration.maxFrameBytes, body.count <= configuration.maxFrameBytes else {
            throw WireError(
                .messageTooLarge,
                "the message needs \(max(length, body.count)) bytes; the frame limit is \(configuration.maxFrameBytes)")
        }
        buffer.reserveCapacity(minimumWritableBytes: WireConfiguration.headerBytes + payload.count)
        buffer.writeInteger(UInt32(length), endianness: .big)
        buffer.writeInteger(flags.rawValue)
        buffer.writeBytes(payload)
    }
}
