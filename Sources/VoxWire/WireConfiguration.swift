/// Limits and compression settings of one end of a voxsync connection.
///
/// Both ends of a connection enforce their own limits; the defaults are those in
/// `Protocol/PROTOCOL.md`.
public struct WireConfiguration: Sendable, Equatable {
    /// Largest accepted value of a frame's length field (flags byte + body), and the largest
    /// decompressed body. Default 16 MiB.
    public var maxFrameBytes: Int = 16 * 1024 * 1024

    /// Bodies of at least this many bytes are zstd-compressed when that makes them smaller.
    /// Default 1 KiB: a single 192-float embedding (768 bytes) does not compress, so the hot
    /// path never pays for it. `Int.max` disables compression.
    public var compressionThreshold: Int = 1024

    /// zstd level for compressed bodies. Level 1: on float vectors higher levels save nothing.
    public var compressionLevel: Int32 = 1

    public init() {}

    /// Bytes before the body: u32 length and the flags byte.
    public static let headerBytes = 5
}

/// Bits of a frame's flags byte.
public struct FrameFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The body is exactly one zstd frame that declares its content size.
    public static let compressed = FrameFlags(rawValue: 1 << 0)

    /// Every bit that has a meaning in protocol version 1; the others must be 0.
    public static let known: FrameFlags = [.compressed]
}
