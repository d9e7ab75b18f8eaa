// The bounded heaps of `EmbeddingMatrix.topK`'s scan: the k-th best lower bound so far, and
// the k best rescored rows.

/// The k-th largest of the values offered so far (−∞ until k were offered): a min-heap of k.
struct KthLargest {
    private let k: Int
    private var heap: [Float] = []

    init(k: Int) {
        self.k = k
        heap.reserveCapacity(k)
    }

    var value: Float { heap.count < k ? -.infinity : heap[0] }

    mutating func offer(_ value: Float) {
        if heap.count < k {
            heap.append(value)
            var child = heap.count - 1
            while child > 0, heap[child] < heap[(child - 1) / 2] {
                heap.swapAt(child, (child - 1) / 2)
                child = (child - 1) / 2
            }
        } else if value > heap[0] {
            heap[0] = value
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < k, heap[left] < heap[smallest] { smallest = left }
                if right < k, heap[right] < heap[smallest] { smallest = right }
                guard smallest != parent else { return }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }
}
/// The k best (score, id) pairs seen so far, in a min-heap on score so each offer is
/// O(log k) and most rows are rejected by one comparison with the heap's minimum.
struct TopK {
    struct Entry { var score: Float; var id: String }
    let capacity: Int
    private var heap: [Entry] = []

    init(capacity: Int) {
        self.capacity = capacity
        heap.reserveCapacity(capacity)
    }

    /// Whether `a` ranks below `b`: lower score, or equal score and a later id.
    private static func below(_ a: Entry, _ b: Entry) -> Bool {
        a.score < b.score || (a.score == b.score && a.id > b.id)
    }

    mutating func offer(score: Float, id: String) {
        let entry = Entry(score: score, id: id)
        if heap.count < capacity {
            heap.append(entry)
            siftUp(heap.count - 1)
        } else if Self.below(heap[0], entry) {
            heap[0] = entry
            siftDown(0)
        }
    }

    /// The entries, best first.
    func sorted() -> [Entry] { heap.sorted { Self.below($1, $0) } }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.below(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && Self.below(heap[left], heap[smallest]) { smallest = left }
            if right < heap.count && Self.below(heap[right], heap[smallest]) { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
