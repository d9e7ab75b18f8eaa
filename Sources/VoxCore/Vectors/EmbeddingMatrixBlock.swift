// One block of `EmbeddingMatrix`'s rows.

extension EmbeddingMatrix {
    /// Up to `blockRows` rows: the upper and lower planes (row after row, `dimension` values
    /// each), and each row's 1 / ‖row‖ (rows keep their enrolled length, so cosine is dot ×
    /// this), error bound (the largest distance between the row's scan score and its exact
    /// score, for any unit probe) and id.
    struct Block: Sendable {
        var high: [UInt16] = []
        var low: [UInt16] = []
        var inverseNorms: [Float] = []
        var errorBounds: [Float] = []
        var ids: [String] = []

        /// A block with room for `blockRows` rows and none in it. Its pages are faulted in as
        /// rows are added, so a partly filled block costs only what it holds.
        init(dimension: Int) { reserveFull(dimension) }

        /// Room for `blockRows` rows: an array copied on write (a snapshot shared it) has only
        /// the room it needed, and appending would reallocate it again and again.
        mutating func reserveFull(_ dimension: Int) {
            let values = EmbeddingMatrix.blockRows * dimension, rows = EmbeddingMatrix.blockRows
            if high.capacity < values { high.reserveCapacity(values) }
            if low.capacity < values { low.reserveCapacity(values) }
            if inverseNorms.capacity < rows { inverseNorms.reserveCapacity(rows) }
            if errorBounds.capacity < rows { errorBounds.reserveCapacity(rows) }
            if ids.capacity < rows { ids.reserveCapacity(rows) }
        }

        /// Whether row `local` is `embedding`, bit for bit.
        func holds(_ local: Int, _ embedding: UnsafeBufferPointer<Float>, dimension: Int) -> Bool {
            let base = local * dimension
            for column in 0..<dimension {
                let bits = embedding[column].bitPattern
                guard high[base + column] == UInt16(truncatingIfNeeded: bits >> 16),
                      low[base + column] == UInt16(truncatingIfNeeded: bits) else { return false }
            }
            return true
        }

        /// A new last row for `id`, zero until `set`.
        mutating func append(_ id: String, dimension: Int) {
            high.append(contentsOf: repeatElement(0, count: dimension))
            low.append(contentsOf: repeatElement(0, count: dimension))
            inverseNorms.append(0)
            errorBounds.append(0)
            ids.append(id)
        }

        mutating func set(_ local: Int, _ embedding: UnsafeBufferPointer<Float>, inverseNorm: Float, errorBound: Float, dimension: Int) {
            let base = local * dimension
            high.withUnsafeMutableBufferPointer { high in
                low.withUnsafeMutableBufferPointer { low in
                    EmbeddingMatrix.split(embedding, upper: UnsafeMutableBufferPointer(rebasing: high[base..<base + dimension]),
                                          lower: UnsafeMutableBufferPointer(rebasing: low[base..<base + dimension]))
                }
            }
            inverseNorms[local] = inverseNorm
            errorBounds[local] = errorBound
        }

        /// Everything of row `local`, copied out (not slices of this block's arrays, which would
        /// make writing them back into the same block copy the whole block), to move it.
        func copy(_ local: Int, dimension: Int) -> (high: [UInt16], low: [UInt16], inverseNorm: Float, errorBound: Float, id: String) {
            let base = local * dimension
            return (Array(high[base..<base + dimension]), Array(low[base..<base + dimension]), inverseNorms[local], errorBounds[local], ids[local])
        }

        mutating func replace(_ local: Int, with row: (high: [UInt16], low: [UInt16], inverseNorm: Float, errorBound: Float, id: String), dimension: Int) {
            let base = local * dimension
            high.replaceSubrange(base..<base + dimension, with: row.high)
            low.replaceSubrange(base..<base + dimension, with: row.low)
            inverseNorms[local] = row.inverseNorm
            errorBounds[local] = row.errorBound
            ids[local] = row.id
        }

        mutating func removeLast(dimension: Int) {
            high.removeLast(dimension)
            low.removeLast(dimension)
            inverseNorms.removeLast()
            errorBounds.removeLast()
            ids.removeLast()
        }

        /// Row `local` as floats, bit for bit as enrolled.
        func write(_ local: Int, into buffer: UnsafeMutableBufferPointer<Float>, dimension: Int) {
            let start = local * dimension
            high.withUnsafeBufferPointer { high in
                low.withUnsafeBufferPointer { low in
                    for column in 0..<dimension {
                        buffer[column] = Float(bitPattern: UInt32(high[start + column]) << 16 | UInt32(low[start + column]))
                    }
                }
            }
        }

        func exactScore(_ local: Int, scratch: UnsafeMutableBufferPointer<Float>, unitProbe: [Float], dimension: Int) -> Float {
            write(local, into: scratch, dimension: dimension)
            return unitProbe.withUnsafeBufferPointer { VectorMath.dot(UnsafeBufferPointer(scratch), $0) } * inverseNorms[local]
        }
    }
}
