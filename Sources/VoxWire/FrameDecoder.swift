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
        let bodyLength = Int(length) - 1
        let decompressor: ZstdDecompressor?
        if flags.contains(.compressed) {
            if self.decompressor == nil { self.decompressor = ZstdDecompressor() }
            decompressor = self.decompressor
        } else {
            decompressor = nil
        }
        let limit = configuration.maxFrameBytes
        let envelope: Envelope
        do {
            envelope = try buffer.withUnsafeReadableBytes { all in
                let start = WireConfiguration.headerBytes
                let body = UnsafeRawBufferPointer(rebasing: all[start..<(start + bodyLength)])
                guard let decompressor else { return try Self.parse(body) }
                let inflated = try decompressor.decompress(body, limit: limit)
                return try inflated.withUnsafeBytes { try Self.parse($0) }
            }
        } catch let error as WireError {
            throw error
        } catch {
            throw WireError(.invalidEnvelope, "\(error)")
        }
        buffer.moveReaderIndex(forwardBy: total)
        return envelope
    }

    /// The error for a stream that ended with `remaining` bytes of an unfinished frame.
    public static func truncated(remaining: Int) -> WireError {
        WireError(.truncatedFrame, "the connection ended \(remaining) bytes into a frame")
    }

    private static func parse(_ body: UnsafeRawBufferPointer) throws(WireError) -> Envelope {
        do {
            return try Envelope(serializedBytes: body)
        } catch {
            throw WireError(.invalidEnvelope, "the body is not a voxsync.v1.Envelope (\(error))")
        }
    }
}
