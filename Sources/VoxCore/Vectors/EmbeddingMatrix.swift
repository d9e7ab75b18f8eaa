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
    static let blockShift = 10
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
    static func split(_ values: UnsafeBufferPointer<Float>, upper: UnsafeMutableBufferPointer<UInt16>, lower: UnsafeMutableBufferPointer<UInt16>) {
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
    static func location(of row: Int) -> (block: Int, local: Int) {
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
