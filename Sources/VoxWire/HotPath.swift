import Foundation
import NIOCore
import SwiftProtobuf

/// Hand-written protobuf for the messages of the hot path — a `VerifyRequest`, `PutRequest`
/// or `Ping` in, a `VerifyResponse`, `PutResponse` or `Pong` out — which SwiftProtobuf's
/// generic decoder and encoder spent about a sixth of the cache worker's time per verify on
/// (field visitors, a message storage class, element-by-element float decoding, an
/// intermediate array), and an eighth of its client loops' time per enroll.
///
/// Exactness: the encoder writes the bytes SwiftProtobuf writes (fields in number order,
/// defaults left out, floats compared by bit pattern as its generated code does), which
/// `HotPathTests` check against SwiftProtobuf on random messages. The decoder accepts only the
/// canonical layout — each field at most once, in order, packed floats, no unknown fields,
/// well-formed varints, valid UTF-8 — and returns nil for anything else, which then goes to
/// SwiftProtobuf: what it decodes is what SwiftProtobuf decodes, and everything else is
/// decoded (or refused) by SwiftProtobuf itself.
enum HotPath {
    // Tags: field number << 3 | wire type (0 varint, 2 length-delimited, 5 fixed32).
    private static let requestIDTag: UInt8 = 1 << 3 | 0
    private static let pingTag: UInt8 = 4 << 3 | 2
    private static let pongTag: UInt8 = 5 << 3 | 2
    private static let putTag: UInt8 = 10 << 3 | 2
    private static let putOKTag: UInt8 = 11 << 3 | 2
    private static let verifyTag: UInt8 = 14 << 3 | 2
    private static let verifyOKTag: UInt8 = 15 << 3 | 2

    // MARK: Decoding

    /// The envelope in `body` when it is a canonically encoded verify, put or ping; nil
    /// otherwise.
    static func decode(_ body: UnsafeRawBufferPointer) -> Envelope? {
        var reader = Reader(bytes: body)
        var envelope = Envelope()
        guard let first = reader.byte() else { return nil }
        var tag = first
        if tag == requestIDTag {
            guard let id = reader.varint(), let next = reader.byte() else { return nil }
            envelope.requestID = id
            tag = next
        }
        guard tag == verifyTag || tag == putTag || tag == pingTag, let length = reader.length(), let message = reader.slice(length), reader.atEnd else {
            return nil
        }
        switch tag {
        case verifyTag:
            guard let verify = decodeVerify(message) else { return nil }
            envelope.message = .verify(verify)
        case putTag:
            guard let put = decodePut(message) else { return nil }
            envelope.message = .put(put)
        default:
            guard let ping = decodePing(message) else { return nil }
            envelope.message = .ping(ping)
        }
        return envelope
    }

    private static func decodePut(_ bytes: UnsafeRawBufferPointer) -> Voxsync_V1_PutRequest? {
        var reader = Reader(bytes: bytes)
        var put = Voxsync_V1_PutRequest()
        var tag = reader.byte()
        if tag == 1 << 3 | 2 {  // profile
            guard let profile = reader.message(decodeProfile) else { return nil }
            put.profile = profile
            tag = reader.byte()
        }
        if tag == 2 << 3 | 0 {  // expected_version (explicit presence: set even when 0)
            guard let version = reader.varint() else { return nil }
            put.expectedVersion = version
            tag = reader.byte()
        }
        return tag == nil ? put : nil
    }

    /// A profile as a put sends it: speaker id, embedding, samples, threshold, metadata. The
    /// store's bookkeeping (fields 6–9, ignored in a put) is left to SwiftProtobuf.
    private static func decodeProfile(_ bytes: UnsafeRawBufferPointer) -> Voxsync_V1_Profile? {
        var reader = Reader(bytes: bytes)
        var profile = Voxsync_V1_Profile()
        var tag = reader.byte()
        if tag == 1 << 3 | 2 {  // speaker_id
            guard let id = reader.string() else { return nil }
            profile.speakerID = id
            tag = reader.byte()
        }
        if tag == 2 << 3 | 2 {  // embedding
            guard let embedding = reader.message(decodeEmbedding) else { return nil }
            profile.embedding = embedding
            tag = reader.byte()
        }
        var samples: [Voxsync_V1_Embedding] = []
        while tag == 3 << 3 | 2 {  // samples, one field each, in order
            guard let sample = reader.message(decodeEmbedding) else { return nil }
            samples.append(sample)
            tag = reader.byte()
        }
        if !samples.isEmpty { profile.samples = samples }
        if tag == 4 << 3 | 5 {  // threshold, fixed32
            guard let value = reader.slice(4) else { return nil }
            profile.threshold = Float(bitPattern: UInt32(littleEndian: value.loadUnaligned(as: UInt32.self)))
            tag = reader.byte()
        }
        if tag == 5 << 3 | 2 {  // metadata
            guard let metadata = reader.string() else { return nil }
            profile.metadata = metadata
            tag = reader.byte()
        }
        return tag == nil ? profile : nil
    }

    private static func decodeVerify(_ bytes: UnsafeRawBufferPointer) -> Voxsync_V1_VerifyRequest? {
        var reader = Reader(bytes: bytes)
        var verify = Voxsync_V1_VerifyRequest()
        var tag = reader.byte()
        if tag == 1 << 3 | 2 {  // speaker_id
            guard let id = reader.string() else { return nil }
            verify.speakerID = id
            tag = reader.byte()
        }
        if tag == 2 << 3 | 2 {  // probe
            guard let probe = reader.message(decodeEmbedding) else { return nil }
            verify.probe = probe
            tag = reader.byte()
        }
        return tag == nil ? verify : nil
    }

    private static func decodeEmbedding(_ bytes: UnsafeRawBufferPointer) -> Voxsync_V1_Embedding? {
        var reader = Reader(bytes: bytes)
        var embedding = Voxsync_V1_Embedding()
        var tag = reader.byte()
        if tag == 1 << 3 | 2 {  // values, packed
            guard let length = reader.length(), length % 4 == 0, let packed = reader.slice(length) else { return nil }
            embedding.values = [Float](unsafeUninitializedCapacity: length / 4) { values, count in
                for index in 0..<length / 4 {
                    values[index] = Float(bitPattern: UInt32(littleEndian: packed.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
                }
                count = length / 4
            }
            tag = reader.byte()
        }
        if tag == 2 << 3 | 2 {  // model
            guard let model = reader.string() else { return nil }
            embedding.model = model
            tag = reader.byte()
        }
        return tag == nil ? embedding : nil
    }

    private static func decodePing(_ bytes: UnsafeRawBufferPointer) -> Voxsync_V1_Ping? {
        var reader = Reader(bytes: bytes)
        var ping = Voxsync_V1_Ping()
        guard let tag = reader.byte() else { return ping }
        guard tag == 1 << 3 | 2, let length = reader.length(), let payload = reader.slice(length), reader.atEnd else { return nil }
        ping.payload = Data(payload)
        return ping
    }

    /// Reads a protobuf body front to back; every read returns nil past the end.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        var atEnd: Bool { index == bytes.count }

        mutating func byte() -> UInt8? {
            guard index < bytes.count else { return nil }
            defer { index += 1 }
            return bytes[index]
        }

        /// A varint of at most 10 bytes whose value fits 64 bits (what SwiftProtobuf accepts).
        mutating func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while let byte = byte() {
                if shift == 63 && byte > 1 { return nil }
                value |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
                if shift > 63 { return nil }
            }
            return nil
        }

        /// A length prefix that fits in what is left.
        mutating func length() -> Int? {
            guard let value = varint(), value <= UInt64(bytes.count - index) else { return nil }
            return Int(value)
        }

        /// A length-prefixed string of valid UTF-8 (SwiftProtobuf refuses anything else).
        mutating func string() -> String? {
            guard let length = length(), let text = slice(length) else { return nil }
            return String(validating: text, as: UTF8.self)
        }

        /// A length-prefixed message, decoded by `decode`.
        mutating func message<Message>(_ decode: (UnsafeRawBufferPointer) -> Message?) -> Message? {
            guard let length = length(), let bytes = slice(length) else { return nil }
            return decode(bytes)
        }

        mutating func slice(_ length: Int) -> UnsafeRawBufferPointer? {
            guard length <= bytes.count - index else { return nil }
            defer { index += length }
            return UnsafeRawBufferPointer(rebasing: bytes[index..<index + length])
        }
    }

    // MARK: Encoding

    /// The serialized `envelope` when it is a verify answer, a put's answer or a pong without
    /// unknown fields; nil otherwise.
    static func encode(_ envelope: Envelope) -> [UInt8]? {
        guard envelope.unknownFields.data.isEmpty else { return nil }
        var message: [UInt8] = []
        let tag: UInt8
        switch envelope.message {
        case .verifyOk(let answer)?:
            if case .UNRECOGNIZED = answer.source { return nil }
            guard answer.unknownFields.data.isEmpty, case let source = answer.source.rawValue, (0..<128).contains(source) else { return nil }
            tag = verifyOKTag
            message.reserveCapacity(16)
            if answer.score.bitPattern != 0 { appendFloat(answer.score, field: 1, to: &message) }
            if answer.accepted { message.append(2 << 3 | 0); message.append(1) }
            if answer.threshold.bitPattern != 0 { appendFloat(answer.threshold, field: 3, to: &message) }
            if source != 0 { message.append(4 << 3 | 0); message.append(UInt8(source)) }
        case .putOk(let answer)?:
            guard answer.unknownFields.data.isEmpty else { return nil }
            tag = putOKTag
            message.reserveCapacity(16 + answer.origin.utf8.count)
            if answer.version != 0 {
                message.append(1 << 3 | 0)
                appendVarint(answer.version, to: &message)
            }
            if !answer.origin.isEmpty {
                message.append(2 << 3 | 2)
                appendVarint(UInt64(answer.origin.utf8.count), to: &message)
                message.append(contentsOf: answer.origin.utf8)
            }
        case .pong(let pong)?:
            guard pong.unknownFields.data.isEmpty else { return nil }
            tag = pongTag
            if !pong.payload.isEmpty {
                message.append(1 << 3 | 2)
                appendVarint(UInt64(pong.payload.count), to: &message)
                message.append(contentsOf: pong.payload)
            }
        default:
            return nil
        }
        var body: [UInt8] = []
        body.reserveCapacity(message.count + 16)
        if envelope.requestID != 0 {
            body.append(requestIDTag)
            appendVarint(envelope.requestID, to: &body)
        }
        body.append(tag)
        appendVarint(UInt64(message.count), to: &body)
        body.append(contentsOf: message)
        return body
    }

    private static func appendFloat(_ value: Float, field: UInt8, to bytes: inout [UInt8]) {
        bytes.append(field << 3 | 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }
}
