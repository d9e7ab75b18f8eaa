import Testing
import VoxCore

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

    @Test(arguments: [1, 2, 3])
    func topKEqualsBruteForce(seed: UInt64) {
        var rng = Generator(state: seed)
        let dimension = 192
        var matrix = EmbeddingMatrix(dimension: dimension)
        var rows: [String: [Float]] = [:]
        for index in 0..<1_000 {
            let vector = randomVector(dimension, &rng)
            rows["speaker-\(index)"] = vector
            matrix.upsert("speaker-\(index)", embedding: vector)
        }
        for _ in 0..<20 {
            let probe = randomVector(dimension, &rng)
            let expected = bruteForce(rows, probe: probe, k: 10, minScore: -1)
            let got = matrix.topK(probe, k: 10)
            #expect(got.map(\.id) == expected.map(\.0))
            for (match, reference) in zip(got, expected) { #expect(abs(match.score - reference.1) < 1e-5) }
        }
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
}
