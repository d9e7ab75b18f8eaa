/// Why a byte stream could not be read as voxsync frames, or a message could not be framed.
///
/// Every decoding error breaks the connection: the peer is answered with an `Error` frame of
/// code `PROTOCOL` (request id 0) carrying `message`, and the connection is closed.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// The length field is over `maxFrameBytes`.
        case frameTooLarge
        /// The length field is 0: a frame needs at least its flags byte.
        case emptyFrame
        /// A flags bit that protocol version 1 does not define is set.
        case reservedFlags
        /// The zstd frame does not declare its decompressed size.
        case compressedSizeUnknown
        /// The zstd frame declares more than `maxFrameBytes`.
        case compressedSizeTooLarge
        /// The body is not exactly one valid zstd frame.
        case compressedBodyInvalid
        /// The body is not a protobuf `Envelope`.
        case invalidEnvelope
        /// The connection ended in the middle of a frame.
        case truncatedFrame
        /// An outgoing message is larger than `maxFrameBytes` once encoded.
        case messageTooLarge
    }

    public var code: Code
    /// For a person: what was wrong and what to change.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
