import ArgumentParser
import Foundation
import VoxCore
import VoxWire

/// Exact top-k identify over N × D embeddings, one query at a time on one thread: voxsync's
/// `EmbeddingMatrix` against faiss-cpu `IndexFlatIP` on the very same float32 vectors, with
/// the results compared id by id. Optionally also through a running voxsyncd over the socket.
struct IdentifyBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identify",
        abstract: "Exact top-k identify: EmbeddingMatrix vs faiss-cpu IndexFlatIP on the same vectors, one thread.")

    @Option(help: "Path of voxsyncd (default: next to voxsync-bench).")
    var voxsyncd: String?

    @Option(help: "Python with faiss-cpu and numpy; without it the faiss row is skipped.")
    var python: String?

    @Option(help: "Enrolled speakers (1000-10000000).")
    var speakers = 100_000

    @Option(help: "Queries, run one at a time (10-100000).")
    var queries = 500

    @Option(help: "Results per query (1-1000).")
    var k = 10

    @Flag(help: "Also time identify through a voxsyncd holding the same speakers (enrolls them first).")
    var overSocket = false

    func validate() throws {
        guard (1000...10_000_000).contains(speakers) else { throw ValidationError("--speakers must be between 1000 and 10000000") }
        guard (10...100_000).contains(queries) else { throw ValidationError("--queries must be between 10 and 100000") }
        guard (1...1000).contains(k) else { throw ValidationError("-k must be between 1 and 1000") }
    }

    func run() throws {
        let dimension = 192
        var vectors = BenchVectors(dimension: dimension, seed: 3)
        let rows = (0..<speakers).map { _ in vectors.unit() }
        // Each query is a new utterance of an enrolled speaker.
        var pick = BenchVectors(dimension: dimension, seed: 5)
        let probes = (0..<queries).map { q in pick.around(rows[(q * 7_919) % speakers], spread: 0.03) }

        var matrix = EmbeddingMatrix(dimension: dimension)
        matrix.reserveCapacity(speakers)
        for (index, row) in rows.enumerated() { matrix.upsert(benchSpeakerID(index), embedding: row) }
        _ = matrix.topK(probes[0], k: k)  // warm up
        var swiftSamples = LatencySamples(capacity: queries)
        var swiftResults: [[EmbeddingMatrix.Match]] = []
        for probe in probes {
            let started = monotonicNanoseconds()
            let matches = matrix.topK(probe, k: k)
            swiftSamples.record(monotonicNanoseconds() - started)
            swiftResults.append(matches)
        }

        var table = Table("implementation", "speakers × dims", "k", "queries/s", "mean ms", "p50 ms", "p99 ms")
        func add(_ name: String, _ samples: LatencySamples) {
            let mean = Double(samples.nanoseconds.reduce(0, +)) / Double(samples.nanoseconds.count) / 1e6
            table.add(name, "\(speakers) × \(dimension)", "\(k)", format(1000 / mean), format(mean, decimals: 3),
                      format(samples.percentileMicroseconds(50) / 1000, decimals: 3), format(samples.percentileMicroseconds(99) / 1000, decimals: 3))
        }
        add("voxsync EmbeddingMatrix (in process)", swiftSamples)

        var check = "faiss not run (no --python)"
        if let python {
            let faiss = try FaissRun(python: python, dimension: dimension, rows: rows, probes: probes, k: k)
            add("faiss-cpu \(faiss.version) IndexFlatIP (in process, 1 thread)", faiss.samples)
            check = compare(swiftResults, faiss)
        }
        if overSocket {
            let samples = try throughDaemon(rows: rows, probes: probes)
            add("voxsyncd identify over the socket (1 client)", samples)
        }
        print("Identify: exact top-\(k) by cosine, one query at a time on one thread, same float32 vectors for both (release build)")
        print()
        print(table.render())
        print()
        print("Results check: \(check)")
    }

    /// Ids must match rank by rank; where they differ, the scores must tie (within float
    /// rounding of two different summation orders), or the check fails.
    private func compare(_ ours: [[EmbeddingMatrix.Match]], _ faiss: FaissRun) -> String {
        var identical = 0, tiedSwaps = 0, mismatches = 0
        var maxDifference: Float = 0
        for (q, matches) in ours.enumerated() {
            let theirs = faiss.ids[q]
            var sameIDs = matches.count == theirs.count
            for (rank, match) in matches.enumerated() where rank < theirs.count {
                maxDifference = max(maxDifference, abs(match.score - faiss.scores[q][rank]))
                if match.id != benchSpeakerID(theirs[rank]) { sameIDs = false }
            }
            if sameIDs {
                identical += 1
            } else if zip(matches, faiss.scores[q]).allSatisfy({ abs($0.score - $1) < 1e-5 }) {
                tiedSwaps += 1
            } else {
                mismatches += 1
            }
        }
        let verdict = mismatches == 0 ? "PASS" : "FAIL"
        return "\(verdict): \(identical) of \(ours.count) queries return the same \(k) ids in the same order as faiss; \(tiedSwaps) differ only in the order of tied scores; \(mismatches) differ. Largest score difference \(maxDifference) (float rounding of two summation orders)."
    }

    private func throughDaemon(rows: [[Float]], probes: [[Float]]) throws -> LatencySamples {
        let daemon = try DaemonProcess(executable: voxsyncd ?? DaemonProcess.siblingExecutable)
        defer { daemon.stop() }
        _ = try EnrollLoad.run(socketPath: daemon.socketPath, clients: 32, count: rows.count) { rows[$0] }
        let messages = probes.map { probe -> Envelope.OneOf_Message in
            var identify = Voxsync_V1_IdentifyRequest()
            identify.probe.values = probe
            identify.k = UInt32(k)
            return .identify(identify)
        }
        let frames = try VoxsyncFrameRingDialect.frames(messages)
        return try ClosedLoopClient.run(socketPath: daemon.socketPath, clients: 1, requests: messages.count) {
            try VoxsyncFrameRingDialect(frames: frames, answer: .identifyOk(.init()))
        }.samples
    }
}

/// faiss-cpu run by a Python child on the same vectors, written as raw float32 files.
struct FaissRun {
    var version = ""
    var samples = LatencySamples(capacity: 0)
    var ids: [[Int]] = []
    var scores: [[Float]] = []

    static let script = #"""
    import sys, time, numpy as np, faiss
    directory, d, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    faiss.omp_set_num_threads(1)
    rows = np.fromfile(directory + "/rows.f32", dtype=np.float32).reshape(-1, d)
    probes = np.fromfile(directory + "/probes.f32", dtype=np.float32).reshape(-1, d)
    index = faiss.IndexFlatIP(d)
    index.add(rows)
    index.search(probes[:1], k)  # warm up
    nanoseconds, ids, scores = [], [], []
    for q in range(len(probes)):
        probe = probes[q:q + 1]
        started = time.perf_counter_ns()
        D, I = index.search(probe, k)
        nanoseconds.append(time.perf_counter_ns() - started)
        ids.append(I[0]); scores.append(D[0])
    np.array(nanoseconds, dtype=np.int64).tofile(directory + "/ns.i64")
    np.array(ids, dtype=np.int64).tofile(directory + "/ids.i64")
    np.array(scores, dtype=np.float32).tofile(directory + "/scores.f32")
    print(faiss.__version__)
    """#

    init(python: String, dimension: Int, rows: [[Float]], probes: [[Float]], k: Int) throws {
        let directory = NSTemporaryDirectory() + "vxbench-faiss-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.write(rows, to: directory + "/rows.f32")
        try Self.write(probes, to: directory + "/probes.f32")
        try Self.script.write(toFile: directory + "/identify.py", atomically: true, encoding: .utf8)
        version = try runProcess(python, [directory + "/identify.py", directory, "\(dimension)", "\(k)"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let nanoseconds: [Int64] = try Self.read(directory + "/ns.i64")
        samples = LatencySamples(capacity: nanoseconds.count)
        for value in nanoseconds { samples.record(UInt64(value)) }
        let flatIDs: [Int64] = try Self.read(directory + "/ids.i64")
        let flatScores: [Float] = try Self.read(directory + "/scores.f32")
        ids = stride(from: 0, to: flatIDs.count, by: k).map { flatIDs[$0..<$0 + k].map(Int.init) }
        scores = stride(from: 0, to: flatScores.count, by: k).map { Array(flatScores[$0..<$0 + k]) }
    }

    private static func write(_ vectors: [[Float]], to path: String) throws {
        var data = Data(capacity: vectors.count * (vectors.first?.count ?? 0) * 4)
        for vector in vectors { vector.withUnsafeBytes { data.append(contentsOf: $0) } }
        try data.write(to: URL(fileURLWithPath: path))
    }

    private static func read<T>(_ path: String) throws -> [T] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return data.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
    }
}
