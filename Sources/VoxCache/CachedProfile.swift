import VoxCore
import VoxStore

/// A profile as the cache keeps it: the record without its embedding, which lives in the
/// identify matrix — the worker holds each embedding once (100 000 profiles × 192 floats are
/// 73 MiB; a second copy would double that) — plus what makes verify a few dot products.
///
/// A class, so that the cache's dictionary holds a pointer per bucket rather than the whole
/// record (a dictionary of 100 000 entries has 262 144 buckets). Immutable, hence `Sendable`.
final class CachedProfile: Sendable {
    /// The record with an empty `embedding`; `record(embedding:)` puts it back.
    let stripped: ProfileRecord
    /// 1 / ‖sample‖ for each further enrollment sample, so a sample's cosine is one dot product.
    private let sampleInverseNorms: [Float]

    init(_ record: ProfileRecord) {
        var stripped = record
        stripped.embedding = []
        self.stripped = stripped
        self.sampleInverseNorms = record.samples.map { 1 / VectorMath.dot($0, $0).squareRoot() }
    }

    var speakerID: String { stripped.speakerID }
    var threshold: Float { stripped.threshold }

    /// The whole record, given its embedding (from the matrix).
    func record(embedding: [Float]) -> ProfileRecord {
        var record = stripped
        record.embedding = embedding
        return record
    }

    /// The mean cosine similarity of `unitProbe` over the enrollment vectors — the embedding,
    /// whose cosine the matrix computes, and every sample — as Apple's personalised "Hey Siri"
    /// scores a speaker: averaging over several enrollments is steadier than the best single
    /// match.
    func score(unitProbe: [Float], embeddingCosine: Float) -> Float {
        var total = embeddingCosine
        for (sample, inverseNorm) in zip(stripped.samples, sampleInverseNorms) {
            total += VectorMath.dot(sample, unitProbe) * inverseNorm
        }
        return total / Float(1 + stripped.samples.count)
    }
}
