/// Float32 vector arithmetic for embeddings, written over SIMD16 so the compiler emits AVX
/// without any platform-specific code.
public enum VectorMath {
    /// Dot product of two equally long vectors.
    @inlinable
    public static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        precondition(a.count == b.count, "dot of vectors of different lengths")
        let count = a.count
        guard count > 0 else { return 0 }
        var sum = SIMD16<Float>()
        var index = 0
        let ra = UnsafeRawPointer(a.baseAddress!)
        let rb = UnsafeRawPointer(b.baseAddress!)
        while index + 16 <= count {
            let va = ra.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
            let vb = rb.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
            sum += va * vb
            index += 16
        }
        var total = sum.sum()
        while index < count {
            total += a[index] * b[index]
            index += 1
        }
        return total
    }

    @inlinable
    public static func dot(_ a: [Float], _ b: [Float]) -> Float {
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in dot(pa, pb) } }
    }

    /// `v` scaled to unit length (callers validate that the norm is non-zero and finite).
    public static func normalized(_ v: [Float]) -> [Float] {
        let norm = dot(v, v).squareRoot()
        return v.map { $0 / norm }
    }

    /// Cosine similarity of two non-zero vectors.
    public static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        dot(a, b) / (dot(a, a).squareRoot() * dot(b, b).squareRoot())
    }
}
