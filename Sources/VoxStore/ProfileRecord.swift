/// A speaker's profile as the store keeps it.
public struct ProfileRecord: Sendable, Equatable {
    public var speakerID: String
    public var embedding: [Float]
    /// Further enrollment vectors (at most 64), each of the store's dimension.
    public var samples: [[Float]]
    /// 0 means the store's default threshold.
    public var threshold: Float
    public var metadata: String
    /// Set by the store: hybrid-logical-clock version, writing instance, time, tombstone.
    public var version: UInt64 = 0
    public var origin = ""
    public var updatedAt: Int64 = 0
    public var deleted = false

    public init(speakerID: String, embedding: [Float], samples: [[Float]] = [], threshold: Float = 0, metadata: String = "") {
        self.speakerID = speakerID
        self.embedding = embedding
        self.samples = samples
        self.threshold = threshold
        self.metadata = metadata
    }
}
