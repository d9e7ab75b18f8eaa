import NIOCore
import SwiftProtobuf

/// Reads frames from a byte stream and yields the envelopes they carry.
///
/// A pure value: it owns no socket and can be fed bytes in any split. It never trusts a length
/// it has not bounded: the length field is checked against `maxFrameBytes` before a single
/// body byte is buffered, and a compressed body's declared size is checked before it is
/// inflated. On a short read it leaves the buffer's reader index where it was.
public struct FrameDecoder {
    public let configuration: WireConfiguration
    private var decompressor: ZstdDecompressor?

    public init(configuration: WireConfiguration = .init()) {
        self.configuration = configuration
    }

    /// Decodes the next whole frame from `buffer`, or returns nil (consuming nothing) when the
    /// buffer does not yet hold one. Throws for a frame that breaks a rule; the stream cannot
    /// be resynchronised after that and the connection must be closed.
    public mutating func decode(_ buffer: inout ByteBuffer) throws(WireError) -> Envelope? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return nil
        }
        guard length <= configuration.maxFrameBytes else {
            throw WireError(
                .frameTooLarge,
                "frame length \(length) is over the limit of \(configuration.maxFrameBytes) bytes")
        }
        guard length > 0 else {
            throw WireError(.emptyFrame, "frame length 0: a frame holds at least its flags byte")
        }
        let total = 4 + Int(length)
        guard buffer.readableBytes >= total else { return nil }

        let flags = FrameFlags(rawValue: buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self)!)
        guard flags.isSubset(of: .known) else {
            throw WireError(
                .reservedFlags,
                "flags byte 0x\(String(flags.rawValue, radix: 16)) sets reserved bits; only bit 0 (compressed) is defined")
        }
        let body = buffer.getSlice(at: buffer.readerIndex + WireConfiguration.headerBytes, length: Int(length) - 1)!
        let envelope: Envelope
        if flags.contains(.compressed) {
            if decompressor == nil { decompressor = ZstdDecompressor() }
            let inflated = try body.withUnsafeReadableBytes { (raw) throws(WireError) in
                try decompressor!.decompress(raw, limit: configuration.maxFrameBytes)
            }
            envelope = try Self.parse(inflated)
        } else {
            envelope = try Self.parse(body)
        }
        buffer.moveReaderIndex(forwardBy: total)
        return envelope
    }

    /// The error for a stream that ended with `remaining` bytes of an unfinished frame.
    public static func truncated(remaining: Int) -> WireError {
        WireError(.truncatedFrame, "the connection ended \(remaining) bytes into a frame")
    }

    private static func parse<Bytes: SwiftProtobufContiguousBytes>(_ body: Bytes) throws(WireError) -> Envelope {
        // A verify, a put or a ping in its canonical encoding is decoded by hand (`HotPath`).
        if let envelope = body.withUnsafeBytes({ HotPath.decode($0) }) { return envelope }
        do {
            return try Envelope(serializedBytes: body)
        } catch {
            throw WireError(.invalidEnvelope, "the body is not a voxsync.v1.Envelope (\(error))")
        }
    }
}
