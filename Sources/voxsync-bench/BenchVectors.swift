import Foundation
import VoxWire

/// Deterministic synthetic embeddings for the benchmarks: random unit directions (what an
/// ECAPA-TDNN embedding of an unknown speaker looks like to a cosine index) and noisy copies
/// of them (a new utterance of an enrolled speaker). The same seed gives the same vectors, so
/// voxsync and the reference tool can be fed identical data.
struct BenchVectors {
    let dimension: Int
    private var state: UInt64

    init(dimension: Int, seed: UInt64) {
        self.dimension = dimension
        self.state = seed
    }

    /// SplitMix64: fast, and good enough to fill vectors.
    private mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A standard normal value (Box–Muller).
    private mutating func gaussian() -> Float {
        let u = Float(next() >> 40 | 1) / Float(1 << 24)
        let v = Float(next() >> 40) / Float(1 << 24)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }

    /// A random direction of unit length.
    mutating func unit() -> [Float] {
        Self.normalized((0..<dimension).map { _ in gaussian() })
    }

    /// `centre` plus gaussian noise of standard deviation `spread` per component, unit length.
    mutating func around(_ centre: [Float], spread: Float) -> [Float] {
        Self.normalized(centre.map { $0 + spread * gaussian() })
    }

    private static func normalized(_ v: [Float]) -> [Float] {
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return v.map { $0 / norm }
    }
}

/// Speaker ids of the benchmarks: `bench-0000000` …, fixed width so they sort as numbers.
func benchSpeakerID(_ index: Int) -> String {
    let digits = String(index)
    return "bench-" + String(repeating: "0", count: max(0, 7 - digits.count)) + digits
}

/// An enroll request for `speakerID` with `embedding` and no extra samples.
func putMessage(_ speakerID: String, _ embedding: [Float]) -> Envelope.OneOf_Message {
    var profile = Profile()
    profile.speakerID = speakerID
    profile.embedding.values = embedding
    var put = Voxsync_V1_PutRequest()
    put.profile = profile
    return .put(put)
}

/// A verify request of `speakerID` with `probe`.
func verifyMessage(_ speakerID: String, _ probe: [Float]) -> Envelope.OneOf_Message {
    var verify = Voxsync_V1_VerifyRequest()
    verify.speakerID = speakerID
    verify.probe.values = probe
    return .verify(verify)
}
