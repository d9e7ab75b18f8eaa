/// What a profile must look like before anything of it is written (DESIGN §3).
///
/// Every check names the offending field and says what would be accepted, so a client can
/// show it to a person. Pure functions: the cache worker runs them before it opens a
/// transaction, so a refused write leaves nothing behind.
public struct ProfileRules: Sendable, Equatable {
    /// D: floats per embedding, fixed when the store is created.
    public var dimension: Int
    public var maxSpeakerIDBytes = 256
    public var maxSamples = 64
    public var maxMetadataBytes = 64 * 1024
    /// The model tag of the store's embeddings, fixed when the store is created.
    public var model: String

    public init(dimension: Int, model: String = Self.defaultModel) {
        self.dimension = dimension
        self.model = model
    }

    public static let defaultModel = "ecapa-tdnn-192"
    public static let maxModelBytes = 64

    /// A model tag a store can be created with: 1–64 bytes of letters, digits and `.` `_`
    /// `-` `:` `/` (what model names use; nothing to quote in a message or a file).
    public static func checkModelTag(_ tag: String) -> String? {
        guard !tag.isEmpty, tag.utf8.count <= maxModelBytes else {
            return "must be 1-\(maxModelBytes) bytes; got \(tag.utf8.count)"
        }
        let allowed = tag.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "/")
        }
        return allowed ? nil : "may hold only letters, digits and . _ - : /; got '\(tag)'"
    }

    /// Why a profile (or a probe) was refused.
    public struct Violation: Error, Sendable, Equatable, CustomStringConvertible {
        public enum Kind: Sendable, Equatable {
            case invalidArgument
            case dimensionMismatch
        }

        public var kind: Kind
        /// The field, as named in voxsync.proto ("speaker_id", "embedding", "samples[3]").
        public var field: String
        public var message: String

        public init(kind: Kind, field: String, message: String) {
            self.kind = kind
            self.field = field
            self.message = message
        }

        public var description: String { "\(field): \(message)" }
    }

    /// 1–256 bytes of UTF-8 with no control characters.
    public func checkSpeakerID(_ id: String) throws(Violation) {
        let bytes = id.utf8.count
        guard bytes > 0 else {
            throw Violation(kind: .invalidArgument, field: "speaker_id", message: "must not be empty")
        }
        guard bytes <= maxSpeakerIDBytes else {
            throw Violation(kind: .invalidArgument, field: "speaker_id", message: "is \(bytes) bytes; at most \(maxSpeakerIDBytes) are allowed")
        }
        // Printable ASCII (nearly every id) needs no Unicode property lookup; this check runs
        // on every verify.
        if id.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return }
        if let control = id.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            throw Violation(
                kind: .invalidArgument, field: "speaker_id",
                message: "contains the control character U+\(String(control.value, radix: 16, uppercase: true)); use printable text")
        }
    }

    /// Exactly D finite values, not all zero (cosine similarity needs a direction).
    public func checkVector(_ values: [Float], field: String) throws(Violation) {
        guard values.count == dimension else {
            throw Violation(
                kind: .dimensionMismatch, field: field,
                message: "has \(values.count) values; this store's embeddings have exactly \(dimension)")
        }
        var squares: Float = 0
        for (index, value) in values.enumerated() {
            guard value.isFinite else {
                throw Violation(kind: .invalidArgument, field: field, message: "value \(index) is \(value); every value must be finite")
            }
            squares += value * value
        }
        guard squares > 0, squares.isFinite else {
            throw Violation(
                kind: .invalidArgument, field: field,
                message: squares > 0 ? "its norm overflows float32; scale it down" : "has zero norm (or values too small to normalise); an embedding needs a direction")
        }
    }

    /// The model a request says its vector came from: empty (not said) or the store's own.
    public func checkModel(_ tag: String, field: String) throws(Violation) {
        guard !tag.isEmpty, tag != model else { return }
        let shown = tag.utf8.count <= Self.maxModelBytes ? tag : String(tag.unicodeScalars.prefix(Self.maxModelBytes)) + "…"
        throw Violation(
            kind: .invalidArgument, field: field,
            message: "is '\(shown)', but this store holds embeddings of model '\(model)'; vectors of different models cannot be compared (send vectors of '\(model)', or leave the tag empty)")
    }

    /// At most `maxSamples` further enrollment vectors, each a valid embedding.
    public func checkSamples(_ samples: [[Float]]) throws(Violation) {
        guard samples.count <= maxSamples else {
            throw Violation(kind: .invalidArgument, field: "samples", message: "has \(samples.count) vectors; at most \(maxSamples) are allowed")
        }
        for (index, sample) in samples.enumerated() {
            try checkVector(sample, field: "samples[\(index)]")
        }
    }

    /// 0 means the store's default; otherwise a cosine similarity in (-1, 1].
    public func checkThreshold(_ threshold: Float) throws(Violation) {
        guard threshold.isFinite, threshold > -1, threshold <= 1 else {
            throw Violation(
                kind: .invalidArgument, field: "threshold",
                message: "is \(threshold); use a cosine similarity above -1 and at most 1, or 0 for the default")
        }
    }

    public func checkMetadata(_ metadata: String) throws(Violation) {
        let bytes = metadata.utf8.count
        guard bytes <= maxMetadataBytes else {
            throw Violation(kind: .invalidArgument, field: "metadata", message: "is \(bytes) bytes; at most \(maxMetadataBytes) are allowed")
        }
    }
}
