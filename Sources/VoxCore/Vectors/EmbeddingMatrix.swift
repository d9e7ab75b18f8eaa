/// Unit-length embeddings of every live speaker in one contiguous float32 array, scanned
/// exactly for the top k by cosine similarity (DESIGN §3 Identify).
///
/// Rows are kept normalised, so cosine is a dot product. Removing a row moves the last row
/// into its place: O(1), and the matrix stays dense. Memory is exactly rows × D × 4 bytes
/// plus the ids.
public struct EmbeddingMatrix: Sendable {
    public let dimension: Int
    private var values: [Float] = []
    private var ids: [String] = []
    private var rowOf: [String: Int] = [:]

    public init(dimension: Int) {
        precondition(dimension > 0)
        self.dimension = dimension
    }

    public var count: Int { ids.count }

    /// Adds or replaces `id`'s row (normalised here).
    public mutating func upsert(_ id: String, embedding: [Float]) {
        precondition(embedding.count == dimension, "embedding of the wrong dimension")
        let unit = VectorMath.normalized(embedding)
        if let row = rowOf[id] {
            values.replaceSubrange(row * dimension..<(row + 1) * dimension, with: unit)
        } else {
            rowOf[id] = ids.count
            ids.append(id)
            values.append(contentsOf: unit)
        }
    }

    public mutating func remove(_ id: String) {
        guard let row = rowOf.removeValue(forKey: id) else { return }
        let last = ids.count - 1
        if row != last {
            let lastID = ids[last]
            values.withUnsafeMutableBufferPointer { buffer in
                for column in 0..<dimension { buffer[row * dimension + column] = buffer[last * dimension + column] }
            }
            ids[row] = lastID
            rowOf[lastID] = row
        }
        ids.removeLast()
        values.removeLast(dimension)
    }

    /// A match of `topK`.
    public struct Match: Sendable, Equatable {
        public var id: String
        public var score: Float
    }

    /// The `k` rows most similar to `probe` with a score of at least `minScore`, best first;
    /// ties broken by id so results are deterministic. Exact: every row is scored.
    public func topK(_ probe: [Float], k: Int, minScore: Float = -.infinity) -> [Match] {
        precondition(probe.count == dimension, "probe of the wrong dimension")
        guard k > 0, !ids.isEmpty else { return [] }
        let unit = VectorMath.normalized(probe)
        var best = TopK(capacity: k)
        unit.withUnsafeBufferPointer { query in
            values.withUnsafeBufferPointer { matrix in
                for row in 0..<ids.count {
                    let slice = UnsafeBufferPointer(rebasing: matrix[row * dimension..<(row + 1) * dimension])
                    let score = VectorMath.dot(query, slice)
                    if score >= minScore { best.offer(score: score, row: row, ids: ids) }
                }
            }
        }
        return best.sorted(ids: ids).map { Match(id: ids[$0.row], score: $0.score) }
    }
}

/// The k best (score, row) pairs seen so far, in a min-heap on score so each offer is
/// O(log k) and most rows are rejected by one comparison with the heap's minimum.
struct TopK {
    struct Entry { var score: Float; var row: Int }
    let capacity: Int
    private var heap: [Entry] = []

    init(capacity: Int) {
        self.capacity = capacity
        heap.reserveCapacity(capacity)
    }

    /// Whether `a` ranks below `b`: lower score, or equal score and a later id.
    private static func below(_ a: Entry, _ b: Entry, _ ids: [String]) -> Bool {
        a.score < b.score || (a.score == b.score && ids[a.row] > ids[b.row])
    }

    mutating func offer(score: Float, row: Int, ids: [String]) {
        let entry = Entry(score: score, row: row)
        if heap.count < capacity {
            heap.append(entry)
            siftUp(heap.count - 1, ids)
        } else if Self.below(heap[0], entry, ids) {
            heap[0] = entry
            siftDown(0, ids)
        }
    }

    /// The entries, best first.
    func sorted(ids: [String]) -> [Entry] { heap.sorted { Self.below($1, $0, ids) } }

    private mutating func siftUp(_ start: Int, _ ids: [String]) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.below(heap[child], heap[parent], ids) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int, _ ids: [String]) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && Self.below(heap[left], heap[smallest], ids) { smallest = left }
            if right < heap.count && Self.below(heap[right], heap[smallest], ids) { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
