/// The content of every write of a chaos run, recomputable from its speaker and write number,
/// so the audit can check a stored profile bit for bit without having kept what was sent.
///
/// The write number (`seq`, counted per speaker by the client that owns the speaker) is in the
/// metadata: `chaos <speaker> #<seq>`. The embedding is a deterministic function of both.
public enum ChaosContent {
    /// Threshold every chaos profile carries.
    public static let threshold: Float = 0.42

    public static func metadata(speaker: String, seq: Int) -> String {
        "chaos \(speaker) #\(seq)"
    }

    /// The write number in `metadata`, when it is chaos metadata of `speaker`.
    public static func seq(inMetadata metadata: String, speaker: String) -> Int? {
        let prefix = "chaos \(speaker) #"
        guard metadata.hasPrefix(prefix) else { return nil }
        return Int(metadata.dropFirst(prefix.count))
    }

    /// `dimension` floats in [-1, 1), never all zero, fixed by (speaker, seq).
    public static func embedding(speaker: String, seq: Int, dimension: Int) -> [Float] {
        var random = SplitMix64(seed: SplitMix64.stableHash(speaker) ^ (UInt64(truncatingIfNeeded: seq) &* 0x9E37_79B9_7F4A_7C15))
        var values = (0..<dimension).map { _ in Float(random.unit() * 2 - 1) }
        if values.allSatisfy({ $0 == 0 }) { values[0] = 1 }
        return values
    }

    /// Whether a stored profile is exactly write `seq` of `speaker`.
    public static func matches(_ row: ObservedRow, seq: Int, dimension: Int) -> Bool {
        row.metadata == metadata(speaker: row.speakerID, seq: seq)
            && row.threshold == threshold
            && row.embedding == embedding(speaker: row.speakerID, seq: seq, dimension: dimension)
    }
}

/// A profile row as the audit sees it (from SQLite, PostgreSQL or a get over the socket).
public struct ObservedRow: Sendable, Equatable {
    public var speakerID: String
    public var version: UInt64
    public var deleted: Bool
    public var metadata: String
    public var threshold: Float
    public var embedding: [Float]

    public init(speakerID: String, version: UInt64, deleted: Bool, metadata: String, threshold: Float, embedding: [Float]) {
        self.speakerID = speakerID
        self.version = version
        self.deleted = deleted
        self.metadata = metadata
        self.threshold = threshold
        self.embedding = embedding
    }
}
