/// The embedding of every live speaker, exactly as enrolled, in a float32 matrix (in blocks of
/// contiguous rows, below) scanned exactly for the top k by cosine similarity (DESIGN §3
/// Identify).
///
/// Each float is stored split in two planes: its upper 16 bits (sign, exponent and 7
/// significand bits — a bfloat16, truncated) and its lower 16 bits. Together they are the
/// float bit for bit, so the matrix costs rows × D × 4 bytes like a plain one, and it is the
/// only copy of the embeddings the cache worker holds. The scan reads only the upper plane —
/// half the memory traffic of a float32 scan, which is what bounds it — and gets a score that
/// is off by at most a per-row bound (Cauchy–Schwarz on the dropped bits). Rows whose
/// bound-widened score could still reach the k-th best are rescored in full float32, so the
/// answer is exactly that of a full float32 scan (`topKFullScan`, which the tests compare).
///
/// Removing a row moves the last row into its place: O(1), and the matrix stays dense.
///
/// Rows are kept in blocks of `blockRows`: each block holds its rows' two planes, contiguous,
/// and their norms, error bounds and ids, all allocated once at full size, so adding a row never
/// moves the rows before it. (One contiguous plane grown by a quarter at a time copied up to
/// 18 MiB at 100 000 rows, under the cache worker's lock, and had the kernel fault in and zero
/// every page of the new copy: a tenth of the cache worker's CPU while enrolling new speakers.)
/// The scan runs block by block.
///
/// A `Snapshot` is the rows as they are, for a scan without the owner's lock (the cache
/// worker's identify): taking one copies nothing. While it lives, the first change to a block
/// copies that block (768 KiB of planes at 192 dims; a removal changes two blocks), so a scan
/// costs at most one copy of each block written during it; writing a row that is already
/// there (a cache miss admitting its profile) changes nothing and copies nothing.
public struct EmbeddingMatrix: Sendable {
    public let dimension: Int
    /// Rows per block: 1024 × 192 dims is 384 KiB per plane.
    public static let blockRows = 1024
    fileprivate static let blockShift = 10
    /// Only the last block with rows is partly filled, and at most one empty block is kept
    /// after it (a delete and an enroll at a block boundary do not free and allocate one each
    /// time).
    private var blocks: [Block] = []
    private var rowOf: [String: Int] = [:]
    public private(set) var count = 0

    public init(dimension: Int) {
        precondition(dimension > 0)
        self.dimension = dimension
    }

    /// Every id with a row, in row order.
    public var identifiers: [String] { blocks.flatMap(\.ids) }

    public func contains(_ id: String) -> Bool { rowOf[id] != nil }

    public mutating func reserveCapacity(_ rows: Int) {
        blocks.reserveCapacity(rows / Self.blockRows + 1)
        rowOf.reserveCapacity(rows)
    }

    /// The rows as they are now, to scan with `topK` while the matrix goes on changing.
    public var snapshot: Snapshot { Snapshot(dimension: dimension, blocks: blocks, count: count) }

    /// Adds or replaces `id`'s row. `embedding` must have a finite, non-zero norm.
    public mutating func upsert(_ id: String, embedding: [Float]) {
        embedding.withUnsafeBufferPointer { upsert(id, embedding: $0) }
    }

    /// Adds or replaces `id`'s row from floats in place (the store's preload hands them over
    /// without an intermediate array).
    public mutating func upsert(_ id: String, embedding: UnsafeBufferPointer<Float>) {
        precondition(embedding.count == dimension, "embedding of the wrong dimension")
        let inverseNorm = 1 / VectorMath.dot(embedding, embedding).squareRoot()
        // The scan sees each value with its lower 16 bits zeroed or replaced by its neighbour's
        // upper 16 bits; either way it is off by less than one bfloat16 ulp, 2^(exponent − 7)
        // (2^-133 at most for zero and subnormal values).
        let dropped = Self.squaredULPs(embedding)  // an upper bound of ‖row − what the scan sees‖²
        // Scaled to the unit row, widened for the rounding of two float sums of ≤ 1 in size.
        let errorBound = dropped.squareRoot() * inverseNorm * 1.001 + 1e-4
        // One hash lookup finds the row or claims the next one (a preload adds 100 000).
        let row = Self.claim(&rowOf[id, default: -1], next: count)
        let (block, local) = Self.location(of: row)
        // A cache miss admits the row it already has: writing it again would copy its block
        // while a snapshot shares it, for nothing.
        if row < count, blocks[block].holds(local, embedding, dimension: dimension) { return }
        if row == count {
            if block == blocks.count {
                blocks.append(Block(dimension: dimension))
            } else {
                blocks[block].reserveFull(dimension)
            }
            blocks[block].append(id, dimension: dimension)
            count += 1
        }
        blocks[block].set(local, embedding, inverseNorm: inverseNorm, errorBound: errorBound, dimension: dimension)
    }

    /// Σ over the values of one bfloat16 ulp squared, 8 values at a time (a preload does this
    /// for 19 million values).
    private static func squaredULPs(_ values: UnsafeBufferPointer<Float>) -> Float {
        let raw = UnsafeRawPointer(values.baseAddress!)
        var sum = SIMD8<Float>()
        var column = 0
        while column + 8 <= values.count {
            let bits = raw.loadUnaligned(fromByteOffset: column * 4, as: SIMD8<UInt32>.self)
            let ulp = unsafeBitCast(bits & 0x7F80_0000, to: SIMD8<Float>.self) * (1 / 128)
            let bounded = ulp.replacing(with: 0x1p-133, where: ulp .< 0x1p-133)
            sum += bounded * bounded
            column += 8
        }
        var total = sum.sum()
        while column < values.count {
            let ulp = max(Float(bitPattern: values[column].bitPattern & 0x7F80_0000) / 128, 0x1p-133)
            total += ulp * ulp
            column += 1
        }
        return total
    }

    /// The upper and lower 16 bits of each value, 8 values at a time.
    private static func split(_ values: UnsafeBufferPointer<Float>, upper: UnsafeMutableBufferPointer<UInt16>, lower: UnsafeMutableBufferPointer<UInt16>) {
        let raw = UnsafeRawPointer(values.baseAddress!)
        let upperRaw = UnsafeMutableRawPointer(upper.baseAddress!), lowerRaw = UnsafeMutableRawPointer(lower.baseAddress!)
        var column = 0
        while column + 8 <= values.count {
            let bits = raw.loadUnaligned(fromByteOffset: column * 4, as: SIMD8<UInt32>.self)
            upperRaw.storeBytes(of: SIMD8<UInt16>(truncatingIfNeeded: bits &>> 16), toByteOffset: column * 2, as: SIMD8<UInt16>.self)
            lowerRaw.storeBytes(of: SIMD8<UInt16>(truncatingIfNeeded: bits), toByteOffset: column * 2, as: SIMD8<UInt16>.self)
            column += 8
        }
        while column < values.count {
            upper[column] = UInt16(truncatingIfNeeded: values[column].bitPattern >> 16)
            lower[column] = UInt16(truncatingIfNeeded: values[column].bitPattern)
            column += 1
        }
    }

    private static func claim(_ slot: inout Int, next: Int) -> Int {
        if slot < 0 { slot = next }
        return slot
    }

    /// The block of `row` and the row's index in that block.
    @inline(__always)
    fileprivate static func location(of row: Int) -> (block: Int, local: Int) {
        (row >> blockShift, row & (blockRows - 1))
    }

    public mutating func remove(_ id: String) {
        guard let row = rowOf.removeValue(forKey: id) else { return }
        let last = count - 1
        let (lastBlock, lastLocal) = Self.location(of: last)
        if row != last {
            let moved = blocks[lastBlock].copy(lastLocal, dimension: dimension)
            let (block, local) = Self.location(of: row)
            blocks[block].replace(local, with: moved, dimension: dimension)
            rowOf[moved.id] = row
        }
        blocks[lastBlock].removeLast(dimension: dimension)
        count -= 1
        // Keep one empty block beyond the last row's, free any further one.
        while blocks.count > (count + Self.blockRows - 1) / Self.blockRows + 1 {
            blocks.removeLast()
        }
    }

    /// `id`'s embedding exactly as enrolled, or nil.
    public func embedding(of id: String) -> [Float]? {
        guard let row = rowOf[id] else { return nil }
        let (block, local) = Self.location(of: row)
        return [Float](unsafeUninitializedCapacity: dimension) { buffer, initialized in
            blocks[block].write(local, into: buffer, dimension: dimension)
            initialized = dimension
        }
    }

    /// Cosine similarity of `id`'s embedding with a probe of unit length, or nil.
    public func cosine(of id: String, unitProbe: [Float]) -> Float? {
        guard let row = rowOf[id] else { return nil }
        let (block, local) = Self.location(of: row)
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: dimension) { scratch in
            blocks[block].exactScore(local, scratch: scratch, unitProbe: unitProbe, dimension: dimension)
        }
    }

    /// A match of `topK`.
    public struct Match: Sendable, Equatable {
        public var id: String
        public var score: Float
    }

    /// The `k` rows most similar to `probe` with a score of at least `minScore`, best first;
    /// ties broken by id so results are deterministic. Exact: equal to `topKFullScan`.
    public func topK(_ probe: [Float], k: Int, minScore: Float = -.infinity) -> [Match] {
        snapshot.topK(probe, k: k, minScore: minScore)
    }

    /// The reference `topK` must equal: every row scored in full float32.
    public func topKFullScan(_ probe: [Float], k: Int, minScore: Float = -.infinity) -> [Match] {
        snapshot.topKFullScan(probe, k: k, minScore: minScore)
    }
}

extension EmbeddingMatrix {
    /// Up to `blockRows` rows: the upper and lower planes (row after row, `dimension` values
    /// each), and each row's 1 / ‖row‖ (rows keep their enrolled length, so cosine is dot ×
    /// this), error bound (the largest distance between the row's scan score and its exact
    /// score, for any unit probe) and id.
    fileprivate struct Block: Sendable {
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

    /// The matrix's rows at one moment, scanned by `topK` — by the cache worker outside its
    /// lock, while the matrix goes on changing (see the type's documentation).
    public struct Snapshot: Sendable {
        public let dimension: Int
        fileprivate let blocks: [Block]
        public let count: Int

        fileprivate init(dimension: Int, blocks: [Block], count: Int) {
            self.dimension = dimension
            self.blocks = blocks
            self.count = count
        }

        /// `EmbeddingMatrix.topK` of these rows.
        public func topK(_ probe: [Float], k: Int, minScore: Float = -.infinity) -> [Match] {
            precondition(probe.count == dimension, "probe of the wrong dimension")
            guard k > 0, count > 0 else { return [] }
            let unit = VectorMath.normalized(probe)
            let candidates = scanUpperPlane(unit, k: k, minScore: minScore)
            return best(of: candidates, k: k, unit: unit, minScore: minScore)
        }

        /// `EmbeddingMatrix.topKFullScan` of these rows.
        public func topKFullScan(_ probe: [Float], k: Int, minScore: Float = -.infinity) -> [Match] {
            precondition(probe.count == dimension, "probe of the wrong dimension")
            guard k > 0, count > 0 else { return [] }
            return best(of: 0..<count, k: k, unit: VectorMath.normalized(probe), minScore: minScore)
        }

        /// The `k` best of `rows` scored in full float32, best first.
        private func best(of rows: some Sequence<Int>, k: Int, unit: [Float], minScore: Float) -> [Match] {
            var best = TopK(capacity: k)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: dimension) { scratch in
                for row in rows {
                    let (block, local) = EmbeddingMatrix.location(of: row)
                    let score = blocks[block].exactScore(local, scratch: scratch, unitProbe: unit, dimension: dimension)
                    if score >= minScore { best.offer(score: score, id: blocks[block].ids[local]) }
                }
            }
            return best.sorted().map { Match(id: $0.id, score: $0.score) }
        }

        // MARK: Scanning

        /// The rows that may belong to the top k: a row is dropped only when even its score
        /// widened by its error bound stays below the k-th best score narrowed by theirs.
        private func scanUpperPlane(_ unit: [Float], k: Int, minScore: Float) -> [Int] {
            let dimension = self.dimension
            let chunks = dimension / 16
            // The probe de-interleaved per 16 columns: one 32-bit load of the upper plane holds
            // two neighbouring columns, the even one in its low half, the odd one in its high half.
            var even = [SIMD8<Float>](repeating: .zero, count: chunks)
            var odd = [SIMD8<Float>](repeating: .zero, count: chunks)
            for chunk in 0..<chunks {
                for lane in 0..<8 {
                    even[chunk][lane] = unit[chunk * 16 + 2 * lane]
                    odd[chunk][lane] = unit[chunk * 16 + 2 * lane + 1]
                }
            }
            var floor = KthLargest(k: k)  // the k-th best lower bound so far
            var candidates: [(row: Int, upper: Float)] = []
            even.withUnsafeBufferPointer { even in
                odd.withUnsafeBufferPointer { odd in
                    unit.withUnsafeBufferPointer { unit in
                        for (index, block) in blocks.enumerated() where index << EmbeddingMatrix.blockShift < count {
                            let first = index << EmbeddingMatrix.blockShift
                            let rows = min(count - first, EmbeddingMatrix.blockRows)
                            block.inverseNorms.withUnsafeBufferPointer { inverseNorms in
                                block.errorBounds.withUnsafeBufferPointer { errorBounds in
                                    block.high.withUnsafeBufferPointer { high in
                                        func offer(_ local: Int, _ sum: Float) {
                                            let score = sum * inverseNorms[local]
                                            let bound = errorBounds[local]
                                            let upper = score + bound
                                            guard upper >= floor.value, upper >= minScore else { return }
                                            candidates.append((first + local, upper))
                                            floor.offer(score - bound)
                                        }
                                        let plane = UnsafeRawPointer(high.baseAddress!)
                                        /// Columns past the last whole chunk, one by one.
                                        func tail(_ local: Int) -> Float {
                                            var sum: Float = 0
                                            for column in chunks * 16..<dimension {
                                                sum += Float(bitPattern: UInt32(high[local * dimension + column]) << 16) * unit[column]
                                            }
                                            return sum
                                        }
                                        // Two rows at a time share the probe's loads. A 32-bit load
                                        // of the upper plane is two columns: shifted left, the even
                                        // one exactly; as it is, the odd one with its neighbour's
                                        // bits below (within the error bound, and no masking
                                        // instruction).
                                        var local = 0
                                        while local + 1 < rows {
                                            let a0 = local * dimension * 2, b0 = a0 + dimension * 2
                                            var evenA = SIMD8<Float>(), oddA = SIMD8<Float>()
                                            var evenB = SIMD8<Float>(), oddB = SIMD8<Float>()
                                            for chunk in 0..<chunks {
                                                let a = plane.loadUnaligned(fromByteOffset: a0 + chunk * 32, as: SIMD8<UInt32>.self)
                                                let b = plane.loadUnaligned(fromByteOffset: b0 + chunk * 32, as: SIMD8<UInt32>.self)
                                                let e = even[chunk], o = odd[chunk]
                                                evenA += unsafeBitCast(a &<< 16, to: SIMD8<Float>.self) * e
                                                oddA += unsafeBitCast(a, to: SIMD8<Float>.self) * o
                                                evenB += unsafeBitCast(b &<< 16, to: SIMD8<Float>.self) * e
                                                oddB += unsafeBitCast(b, to: SIMD8<Float>.self) * o
                                            }
                                            offer(local, (evenA + oddA).sum() + tail(local))
                                            offer(local + 1, (evenB + oddB).sum() + tail(local + 1))
                                            local += 2
                                        }
                                        if local < rows {
                                            let a0 = local * dimension * 2
                                            var sumEven = SIMD8<Float>(), sumOdd = SIMD8<Float>()
                                            for chunk in 0..<chunks {
                                                let a = plane.loadUnaligned(fromByteOffset: a0 + chunk * 32, as: SIMD8<UInt32>.self)
                                                sumEven += unsafeBitCast(a &<< 16, to: SIMD8<Float>.self) * even[chunk]
                                                sumOdd += unsafeBitCast(a, to: SIMD8<Float>.self) * odd[chunk]
                                            }
                                            offer(local, (sumEven + sumOdd).sum() + tail(local))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            // Rows let in early, before the floor rose, may be out of reach now.
            let final = floor.value
            return candidates.filter { $0.upper >= final }.map(\.row)
        }
    }
}
