import NIOCore
import SwiftProtobuf

/// Lets SwiftProtobuf parse an envelope straight out of a frame's bytes (a ByteBuffer slice
/// shares storage), with no copy into an Array first. The byte view is the readable bytes.
extension ByteBuffer: @retroactive SwiftProtobufContiguousBytes {
    public init(repeating: UInt8, count: Int) {
        self = ByteBufferAllocator().buffer(repeating: repeating, count: count)
    }

    public init<S: Sequence>(_ sequence: S) where S.Element == UInt8 {
        self = ByteBuffer(bytes: sequence)
    }

    public var count: Int { readableBytes }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeReadableBytes(body)
    }

    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeMutableReadableBytes(body)
    }
}
