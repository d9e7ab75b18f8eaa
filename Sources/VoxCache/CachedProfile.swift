import VoxCore
import VoxStore

/// A profile as the cache keeps it: the record, plus its enrollment vectors already scaled to
/// unit length so that verifying a probe is a few dot products.
struct CachedProfile: Sendable {
    var record: ProfileRecord
    /// The embedding and every sample, unit length.
    var enrollment: [[Float]]

    init(_ record: ProfileRecord) {
        self.record = record
        self.enrollment = ([record.embedding] + record.samples).map(VectorMath.normalized)
    }

    /// The mean cosine similarity of `unitProbe` over the enrollment vectors, as Apple's
    /// personalised "Hey Siri" scores a speaker: averaging over several enrollments is more
    /// robust than the best single match.
    func score(unitProbe: [Float]) -> Float {
        enrollment.reduce(Float(0)) { $0 + VectorMath.dot($1, unitProbe) } / Float(enrollment.count)
    }
}
