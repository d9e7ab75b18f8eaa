/// The embedding of every live speaker, exactly as enrolled, in one contiguous float32 matrix
/// scanned exactly for the top k by cosine similarity (DESIGN §3 Identify).
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
/// The planes are kept in blocks of `blockRows` rows, each contiguous and allocated once at its
/// full size: adding a row never moves the rows before it. (One contiguous plane grown by a
/// quarter at a time copied up to 18 MiB at 100 000 rows, under the cache worker's lock, and
/// had the kernel fault in and zero every page of the new copy: a tenth of the cache worker's
/// CPU while enrolling new speakers.) The scan runs block by block.
public struct EmbeddingMatrix: Sendable {
    public let dimension: Int
    /// Rows per block: 1024 × 192 dims is 384 KiB per plane.
    public static let blockRows = 1024
    private static let blockShift = 10
    /// The upper and lower plane, block by block; only the last block with rows is partly
    /// filled, and at most one empty block is kept after it (a delete and an enroll at a block
    /// boundary do not free and allocate one each time).
    private var high: [[UInt16]] = []
    private var low: [[UInt16]] = []
    /// 1 / ‖row‖: rows keep their enrolled length, so cosine is dot × this.
    private var inverseNorms: [Float] = []
    /// The largest distance between a row's scan score and its exact score, for any unit probe.
    private var errorBounds: [Float] = []
    private var ids: [String] = []
    private var rowOf: [String: Int] = [:]

    public init(dimension: Int) {
        precondition(dimension > 0)
        self.dimension = dimension
    }

    public var count: Int { ids.count }

    /// Every id with a row, in row order.
    public var identifiers: [String] { ids }

    public func contains(_ id: String) -> Bool { rowOf[id] != nil }

    public mutating func reserveCapacity(_ rows: Int) {
        high.reserveCapacity(rows / Self.blockRows + 1)
        low.reserveCapacity(rows / Self.blockRows + 1)
        inverseNorms.reserveCapacity(rows)
        errorBounds.reserveCapacity(rows)
        ids.reserveCapacity(rows)
        rowOf.reserveCapacity(rows)
    }

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
        // One hash lookup finds the row or claims the next one (a preload adds 100 000).
        let next = ids.count
        let row = Self.claim(&rowOf[id, default: -1], next: next)
        let (block, base) = location(of: row)
        if row != next {
            high[block].withUnsafeMutableBufferPointer { high in
                low[block].withUnsafeMutableBufferPointer { low in
                    Self.split(embedding, upper: UnsafeMutableBufferPointer(rebasing: high[base..<base + dimension]),
                               lower: UnsafeMutableBufferPointer(rebasing: low[base..<base + dimension]))
                }
            }
        } else {
            ids.append(id)
            if block == high.count {
                high.append(Self.emptyBlock(dimension))
                low.append(Self.emptyBlock(dimension))
            } else if high[block].capacity < Self.blockRows * dimension {
                // A block copied on write (the matrix was shared) has only the room it needed.
                high[block].reserveCapacity(Self.blockRows * dimension)
                low[block].reserveCapacity(Self.blockRows * dimension)
            }
            withUnsafeTemporaryAllocation(of: UInt16.self, capacity: 2 * dimension) { halves in
                Self.split(embedding, upper: UnsafeMutableBufferPointer(rebasing: halves[0..<dimension]),
                           lower: UnsafeMutableBufferPointer(rebasing: halves[dimension...]))
                high[block].append(contentsOf: UnsafeBufferPointer(rebasing: halves[0..<dimension]))
                low[block].append(contentsOf: UnsafeBufferPointer(rebasing: halves[dimension...]))
            }
            inverseNorms.append(0)
            errorBounds.append(0)
        }
        inverseNorms[row] = inverseNorm
        // Scaled to the unit row, widened for the rounding of two float sums of ≤ 1 in size.
        errorBounds[row] = dropped.squareRoot() * inverseNorm * 1.001 + 1e-4
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

    /// A block with room for `blockRows` rows and none in it. Its pages are faulted in as rows
    /// are added, so a partly filled block costs only what it holds.
    private static func emptyBlock(_ dimension: Int) -> [UInt16] {
        var block: [UInt16] = []
        block.reserveCapacity(blockRows * dimension)
        return block
    }

    /// The block of `row` and the offset of its first value in that block.
    @inline(__always)
    private func location(of row: Int) -> (block: Int, offset: Int) {
        (row >> Self.blockShift, (row & (Self.blockRows - 1)) * dimension)
    }

    public mutating func remove(_ id: String) {
        guard let row = rowOf.removeValue(forKey: id) else { return }
        let last = ids.count - 1
        let (lastBlock, lastOffset) = location(of: last)
        if row != last {
            let lastID = ids[last]
            let (block, offset) = location(of: row)
            for column in 0..<dimension {
                high[block][offset + column] = high[lastBlock][lastOffset + column]
                low[block][offset + column] = low[lastBlock][lastOffset + column]
            }
            inverseNorms[row] = inverseNorms[last]
            errorBounds[row] = errorBounds[last]
            ids[row] = lastID
            rowOf[lastID] = row
        }
        ids.removeLast()
        high[lastBlock].removeLast(dimension)
        low[lastBlock].removeLast(dimension)
        inverseNorms.removeLast()
        errorBounds.removeLast()
        // Keep one empty block beyond the last row's, free any further one.
        while high.count > (ids.count + Self.blockRows - 1) / Self.blockRows + 1 {
            high.removeLast()
            low.removeLast()
        }
    }

    /// `id`'s embedding exactly as enrolled, or nil.
    public func embedding(of id: String) -> [Float]? {
        guard let row = rowOf[id] else { return nil }
        return [Float](unsafeUninitializedCapacity: dimension) { buffer, initialized in
            write(row: row, into: buffer)
            initialized = dimension
        }
    }

    /// Cosine similarity of `id`'s embedding with a probe of unit length, or nil.
    public func cosine(of id: String, unitProbe: [Float]) -> Float? {
        guard let row = rowOf[id] else { return nil }
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: dimension) { scratch in
            exactScore(row: row, scratch: scratch, unitProbe: unitProbe)
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
        precondition(probe.count == dimension, "probe of the wrong dimension")
        guard k > 0, !ids.isEmpty else { return [] }
        let unit = VectorMath.normalized(probe)
        let candidates = scanUpperPlane(unit, k: k, minScore: minScore)
        var best = TopK(capacity: k)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: dimension) { scratch in
            for row in candidates {
                let score = exactScore(row: row, scratch: scratch, unitProbe: unit)
                if score >= minScore { best.offer(score: score, row: row, ids: ids) }
            }
        }
        return best.sorted(ids: ids).map { Match(id: ids[$0.row], score: $0.score) }
    }

    /// The reference `topK` must equal: every row scored in full float32.
    public func topKFullScan(_ probe: [Float], k: Int, minScore: Float = -.infinity) -> [Match] {
        precondition(probe.count == dimension, "probe of the wrong dimension")
        guard k > 0, !ids.isEmpty else { return [] }
        let unit = VectorMath.normalized(probe)
        var best = TopK(capacity: k)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: dimension) { scratch in
            for row in 0..<ids.count {
                let score = exactScore(row: row, scratch: scratch, unitProbe: unit)
                if score >= minScore { best.offer(score: score, row: row, ids: ids) }
            }
        }
        return best.sorted(ids: ids).map { Match(id: ids[$0.row], score: $0.score) }
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
        inverseNorms.withUnsafeBufferPointer { inverseNorms in
            errorBounds.withUnsafeBufferPointer { errorBounds in
                even.withUnsafeBufferPointer { even in
                    odd.withUnsafeBufferPointer { odd in
                        unit.withUnsafeBufferPointer { unit in
                            func offer(_ row: Int, _ sum: Float) {
                                let score = sum * inverseNorms[row]
                                let bound = errorBounds[row]
                                let upper = score + bound
                                guard upper >= floor.value, upper >= minScore else { return }
                                candidates.append((row, upper))
                                floor.offer(score - bound)
                            }
                            let rows = inverseNorms.count
                            for block in high.indices where block << Self.blockShift < rows {
                                let first = block << Self.blockShift
                                let end = min(rows, first + Self.blockRows)
                                high[block].withUnsafeBufferPointer { high in
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
                                    var row = first
                                    while row + 1 < end {
                                        let a0 = (row - first) * dimension * 2, b0 = a0 + dimension * 2
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
                                        offer(row, (evenA + oddA).sum() + tail(row - first))
                                        offer(row + 1, (evenB + oddB).sum() + tail(row + 1 - first))
                                        row += 2
                                    }
                                    if row < end {
                                        let a0 = (row - first) * dimension * 2
                                        var sumEven = SIMD8<Float>(), sumOdd = SIMD8<Float>()
                                        for chunk in 0..<chunks {
                                            let a = plane.loadUnaligned(fromByteOffset: a0 + chunk * 32, as: SIMD8<UInt32>.self)
                                            sumEven += unsafeBitCast(a &<< 16, to: SIMD8<Float>.self) * even[chunk]
                                            sumOdd += unsafeBitCast(a, to: SIMD8<Float>.self) * odd[chunk]
                                        }
                                        offer(row, (sumEven + sumOdd).sum() + tail(row - first))
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

    /// `row` as floats, bit for bit as enrolled.
    private func write(row: Int, into buffer: UnsafeMutableBufferPointer<Float>) {
        let (block, start) = location(of: row)
        high[block].withUnsafeBufferPointer { high in
            low[block].withUnsafeBufferPointer { low in
                for column in 0..<dimension {
                    buffer[column] = Float(bitPattern: UInt32(high[start + column]) << 16 | UInt32(low[start + column]))
                }
            }
        }
    }

    private func exactScore(row: Int, scratch: UnsafeMutableBufferPointer<Float>, unitProbe: [Float]) -> Float {
        write(row: row, into: scratch)
        return unitProbe.withUnsafeBufferPointer { VectorMath.dot(UnsafeBufferPointer(scratch), $0) } * inverseNorms[row]
    }
}
