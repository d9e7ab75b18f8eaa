import Testing
import VoxCore
import VoxTestSupport

/// Identify must equal a brute-force scan exactly.
@Suite struct EmbeddingMatrixTests {
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state
        }
    }

    func randomVector(_ dimension: Int, _ rng: inout Generator) -> [Float] {
        (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) }
    }

    /// The reference: cosine with Double accumulation, sorted by score then id.
    func bruteForce(_ rows: [String: [Float]], probe: [Float], k: Int, minScore: Float) -> [(String, Float)] {
        func cosine(_ a: [Float], _ b: [Float]) -> Double {
            let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let na = a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let nb = b.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            return dot / (na * nb)
        }
        var scored: [(String, Float)] = []
        for (id, vector) in rows {
            let score = Float(cosine(vector, probe))
            if score >= minScore { scored.append((id, score)) }
        }
        scored.sort { (a: (String, Float), b: (String, Float)) -> Bool in a.1 != b.1 ? a.1 > b.1 : a.0 < b.0 }
        return Array(scored.prefix(k))
    }

    @Test func dotMatchesAScalarLoopForEveryLengthAroundTheSIMDWidth() {
        var rng = Generator(state: 1)
        for length in [1, 7, 15, 16, 17, 31, 32, 33, 192, 193] {
            let a = randomVector(length, &rng)
            let b = randomVector(length, &rng)
            let scalar = zip(a, b).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            #expect(abs(VectorMath.dot(a, b) - scalar) < 1e-4, "length \(length)")
        }
    }

    /// The scans below run on a thread of their own (`offCooperativePool`): in a debug build
    /// they take seconds, and on the cooperative pool's two threads they held up the
    /// transport tests' timeouts in CI. They return what differed; the assertions stay here.
    @Test(arguments: [1, 2, 3])
    func topKEqualsBruteForce(seed: UInt64) async {
        let differences = await offCooperativePool { self.bruteForceDifferences(seed: seed) }
        #expect(differences.isEmpty, "\(differences)")
    }

    func bruteForceDifferences(seed: UInt64) -> [String] {
        var differences: [String] = []
        var rng = Generator(state: seed)
        let dimension = 192
        var matrix = EmbeddingMatrix(dimension: dimension)
        var rows: [String: [Float]] = [:]
        // Sizes kept small: the Double-precision reference is slow in a debug build, and CI
        // has two cores for every suite.
        for index in 0..<400 {
            let vector = randomVector(dimension, &rng)
            rows["speaker-\(index)"] = vector
            matrix.upsert("speaker-\(index)", embedding: vector)
        }
        for _ in 0..<6 {
            let probe = randomVector(dimension, &rng)
            let expected = bruteForce(rows, probe: probe, k: 10, minScore: -1)
            let got = matrix.topK(probe, k: 10)
            if got.map(\.id) != expected.map(\.0) { differences.append("ids \(got.map(\.id)) vs \(expected.map(\.0))") }
            for (match, reference) in zip(got, expected) where !(abs(match.score - reference.1) < 1e-5) {
                differences.append("\(match.id): score \(match.score) vs \(reference.1)")
            }
        }
        return differences
    }

    @Test func upsertReplacesAndRemoveKeepsTheRestFindable() {
        var matrix = EmbeddingMatrix(dimension: 3)
        matrix.upsert("a", embedding: [1, 0, 0])
        matrix.upsert("b", embedding: [0, 1, 0])
        matrix.upsert("c", embedding: [0, 0, 1])
        matrix.upsert("a", embedding: [0, 0, 5])  // a now points like c
        #expect(matrix.count == 3)
        #expect(Set(matrix.topK([0, 0, 1], k: 2).map(\.id)) == ["a", "c"])
        matrix.remove("a")  // the last row (c) moves into a's place
        #expect(matrix.count == 2)
        #expect(matrix.topK([0, 0, 1], k: 1).map(\.id) == ["c"])
        #expect(matrix.topK([0, 0, 1], k: 1).first?.score == 1)
        #expect(matrix.topK([0, 1, 0], k: 1).first?.id == "b")
        matrix.remove("nobody")
        #expect(matrix.count == 2)
    }

    @Test func minScoreAndTiesAreDeterministic() {
        var matrix = EmbeddingMatrix(dimension: 2)
        for id in ["d", "b", "a", "c"] { matrix.upsert(id, embedding: [1, 0]) }
        matrix.upsert("far", embedding: [0, 1])
        #expect(matrix.topK([1, 0], k: 3).map(\.id) == ["a", "b", "c"], "equal scores in id order")
        #expect(matrix.topK([1, 0], k: 10, minScore: 0.5).count == 4, "the orthogonal one is below min_score")
        #expect(EmbeddingMatrix(dimension: 2).topK([1, 0], k: 3) == [])
    }

    // MARK: The upper-plane scan must equal a full float32 scan, bit for bit.

    /// Rows that make the prefilter work hard: random ones, near-duplicates of one direction
    /// (many rows within the error bound of each other), exact duplicates (ties), vectors of
    /// very different lengths, and some with tiny (subnormal) components.
    func awkwardRows(_ dimension: Int, count: Int, _ rng: inout Generator) -> [[Float]] {
        let centre = randomVector(dimension, &rng)
        return (0..<count).map { index -> [Float] in
            switch index % 5 {
            case 0: return randomVector(dimension, &rng)
            case 1: return centre.map { $0 + Float.random(in: -0.001...0.001, using: &rng) }
            case 2: return centre
            case 3: return randomVector(dimension, &rng).map { $0 * 1e6 }
            default: return randomVector(dimension, &rng).enumerated().map { $0.offset % 3 == 1 ? Float.leastNormalMagnitude / 1024 : $0.element }
            }
        }
    }

    @Test(arguments: [1, 3, 16, 17, 100, 192, 200])
    func topKEqualsTheFullFloat32Scan(dimension: Int) async {
        let differences = await offCooperativePool { self.fullScanDifferences(dimension: dimension) }
        #expect(differences.isEmpty, "\(differences)")
    }

    func fullScanDifferences(dimension: Int) -> [String] {
        var differences: [String] = []
        var rng = Generator(state: UInt64(dimension))
        var matrix = EmbeddingMatrix(dimension: dimension)
        for (index, row) in awkwardRows(dimension, count: 600, &rng).enumerated() { matrix.upsert("s\(index)", embedding: row) }
        // 8 probes: the debug build runs this at a few ms per scan, and CI has two cores for
        // every suite.
        for probeIndex in 0..<8 {
            let probe = probeIndex % 2 == 0 ? randomVector(dimension, &rng) : matrix.embedding(of: "s1")!
            for k in [1, 10, 250] {
                for minScore: Float in [-.infinity, 0, 0.9] {
                    let fast = matrix.topK(probe, k: k, minScore: minScore)
                    let full = matrix.topKFullScan(probe, k: k, minScore: minScore)
                    if fast != full { differences.append("dimension \(dimension), k \(k), min \(minScore)") }
                }
            }
        }
        return differences
    }

    @Test func theEmbeddingComesBackBitForBitAndItsCosineMatchesTheScan() {
        var rng = Generator(state: 9)
        var matrix = EmbeddingMatrix(dimension: 192)
        let rows = awkwardRows(192, count: 50, &rng)
        for (index, row) in rows.enumerated() { matrix.upsert("s\(index)", embedding: row) }
        for (index, row) in rows.enumerated() {
            #expect(matrix.embedding(of: "s\(index)")!.map(\.bitPattern) == row.map(\.bitPattern))
        }
        let probe = randomVector(192, &rng)
        for match in matrix.topK(probe, k: 50) {
            #expect(matrix.cosine(of: match.id, unitProbe: VectorMath.normalized(probe)) == match.score)
        }
        #expect(matrix.embedding(of: "nobody") == nil)
        #expect(matrix.cosine(of: "nobody", unitProbe: VectorMath.normalized(probe)) == nil)
    }

    @Test func removingMovesTheLastRowWithAllItsParts() {
        var rng = Generator(state: 10)
        var matrix = EmbeddingMatrix(dimension: 20)
        var rows: [String: [Float]] = [:]
        for index in 0..<30 {
            let row = randomVector(20, &rng).map { $0 * Float(index + 1) }  // lengths differ per row
            rows["s\(index)"] = row
            matrix.upsert("s\(index)", embedding: row)
        }
        for index in stride(from: 0, to: 30, by: 3) {
            matrix.remove("s\(index)")
            rows["s\(index)"] = nil
        }
        #expect(matrix.count == rows.count)
        for (id, row) in rows {
            #expect(matrix.embedding(of: id) == row)
            #expect(matrix.topK(row, k: 1).first?.id == id, "each row is its own best match")
        }
    }

    /// Rows span several blocks of `EmbeddingMatrix.blockRows`: the matrix grows past block
    /// boundaries, loses rows (the last row, from a later block, moves into an earlier one),
    /// shrinks below a boundary, grows past it again and has rows replaced in place. Every
    /// embedding comes back bit for bit, each row is its own best match, and the scan equals
    /// the full scan.
    @Test func rowsAcrossBlocksStayExact() async {
        let differences = await offCooperativePool { self.acrossBlocksDifferences() }
        #expect(differences.isEmpty, "\(differences.prefix(10)) (\(differences.count) in all)")
    }

    func acrossBlocksDifferences() -> [String] {
        var differences: [String] = []
        var rng = Generator(state: 11)
        let dimension = 20, block = EmbeddingMatrix.blockRows
        var matrix = EmbeddingMatrix(dimension: dimension)
        var rows: [String: [Float]] = [:]
        func add(_ id: String) {
            let row = randomVector(dimension, &rng)
            rows[id] = row
            matrix.upsert(id, embedding: row)
        }
        func remove(_ id: String) {
            rows[id] = nil
            matrix.remove(id)
        }
        for index in 0..<(2 * block + block / 2) { add("s\(index)") }
        for index in stride(from: 0, to: 2 * block + block / 2, by: 7) { remove("s\(index)") }
        // Below the second boundary, then past it again with new ids.
        for index in (2 * block - 40)..<(2 * block + block / 2) where rows["s\(index)"] != nil { remove("s\(index)") }
        if matrix.count >= 2 * block { differences.append("did not shrink below two blocks: \(matrix.count)") }
        for index in 0..<600 { add("t\(index)") }
        // Replaced in place, in the first block and in the last.
        for id in ["s1", "s2", "t599", "t598"] { add(id) }
        if matrix.count != rows.count { differences.append("count \(matrix.count) vs \(rows.count)") }
        if matrix.count <= 2 * block { differences.append("did not grow past two blocks again: \(matrix.count)") }
        for (id, row) in rows {
            if matrix.embedding(of: id)?.map(\.bitPattern) != row.map(\.bitPattern) { differences.append("\(id): embedding differs") }
        }
        for id in ["s1", "s3", "s1030", "s2000", "t0", "t300", "t599"] {
            guard let row = rows[id] else { differences.append("\(id) missing from the reference"); continue }
            if matrix.topK(row, k: 1).first?.id != id { differences.append("\(id) is not its own best match") }
        }
        for _ in 0..<4 {
            let probe = randomVector(dimension, &rng)
            for k in [1, 10, 300] where matrix.topK(probe, k: k) != matrix.topKFullScan(probe, k: k) {
                differences.append("k \(k): scan differs from the full scan")
            }
        }
        return differences
    }

    /// A snapshot keeps the rows it was taken with while the matrix changes in every way —
    /// rows replaced in the first and last blocks, removed (moving rows across blocks), added
    /// past a block boundary — and the matrix itself ends up exactly as changed: each scan
    /// equals the full scan over its own rows and a brute-force reference.
    @Test func aSnapshotKeepsItsRowsWhileTheMatrixChanges() async {
        let differences = await offCooperativePool { self.snapshotDifferences() }
        #expect(differences.isEmpty, "\(differences.prefix(10)) (\(differences.count) in all)")
    }

    func snapshotDifferences() -> [String] {
        var differences: [String] = []
        var rng = Generator(state: 12)
        let dimension = 24, block = EmbeddingMatrix.blockRows
        var matrix = EmbeddingMatrix(dimension: dimension)
        var rows: [String: [Float]] = [:]
        for index in 0..<(block + block / 2) {
            rows["s\(index)"] = randomVector(dimension, &rng)
            matrix.upsert("s\(index)", embedding: rows["s\(index)"]!)
        }
        let frozen = matrix.snapshot
        let frozenRows = rows
        for id in ["s0", "s5", "s1500", "s1535"] {
            rows[id] = randomVector(dimension, &rng)
            matrix.upsert(id, embedding: rows[id]!)
        }
        for index in stride(from: 1, to: block + block / 2, by: 5) where rows["s\(index)"] != nil {
            rows["s\(index)"] = nil
            matrix.remove("s\(index)")
        }
        for index in 0..<(block / 2 + 600) {
            rows["t\(index)"] = randomVector(dimension, &rng)
            matrix.upsert("t\(index)", embedding: rows["t\(index)"]!)
        }
        if frozen.count != frozenRows.count { differences.append("snapshot count \(frozen.count) vs \(frozenRows.count)") }
        if matrix.count != rows.count { differences.append("matrix count \(matrix.count) vs \(rows.count)") }
        if matrix.count <= 2 * block { differences.append("did not grow past two blocks: \(matrix.count)") }
        for (id, row) in rows where matrix.embedding(of: id)?.map(\.bitPattern) != row.map(\.bitPattern) {
            differences.append("\(id): the matrix's embedding differs")
        }
        /// The k best of `rows` by cosine, ties by id: what a scan must return.
        func bruteForce(_ rows: [String: [Float]], _ probe: [Float], k: Int) -> [String] {
            let unit = VectorMath.normalized(probe)
            let scored: [(id: String, score: Float)] = rows.map { id, row in (id, VectorMath.dot(VectorMath.normalized(row), unit)) }
            let ranked = scored.sorted { a, b in a.score > b.score || (a.score == b.score && a.id < b.id) }
            return ranked.prefix(k).map(\.id)
        }
        for trial in 0..<6 {
            // Probes near changed rows, so that a snapshot that saw a change would answer differently.
            let probe = trial < 3 ? VectorMath.normalized(rows[["s0", "s1535", "t100"][trial]]!) : randomVector(dimension, &rng)
            let cases: [(name: String, scanned: [EmbeddingMatrix.Match], full: [EmbeddingMatrix.Match], reference: [String: [Float]])] = [
                ("snapshot", frozen.topK(probe, k: 10), frozen.topKFullScan(probe, k: 10), frozenRows),
                ("matrix", matrix.topK(probe, k: 10), matrix.topKFullScan(probe, k: 10), rows),
            ]
            for (name, scanned, full, reference) in cases {
                if scanned != full { differences.append("\(name), probe \(trial): scan differs from the full scan") }
                // Cosines of distinct random rows are far apart next to float rounding, so ids must agree.
                if scanned.map(\.id) != bruteForce(reference, probe, k: 10) { differences.append("\(name), probe \(trial): ids differ from brute force") }
            }
        }
        return differences
    }
}
