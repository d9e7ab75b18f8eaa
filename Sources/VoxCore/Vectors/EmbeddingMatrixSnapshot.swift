// `EmbeddingMatrix.Snapshot`: the rows at one moment, and the exact top-k scan over them.

extension EmbeddingMatrix {
    /// The matrix's rows at one moment, scanned by `topK` — by the cache worker outside its
    /// lock, while the matrix goes on changing (see the type's documentation).
    public struct Snapshot: Sendable {
        public let dimension: Int
        let blocks: [Block]
        public let count: Int

        init(dimension: Int, blocks: [Block], count: Int) {
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
