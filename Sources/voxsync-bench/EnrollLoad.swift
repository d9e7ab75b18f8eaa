import VoxWire

/// Enrolls speakers through the closed-loop client: `clients` connections, each with one
/// write in flight, every write a new speaker. Shared by the enroll benchmark (which measures
/// it) and the benchmarks that need a full store first.
enum EnrollLoad {
    /// Enrolls `bench-<first>` … `bench-<first + count - 1>` with the vectors `embedding(i)`.
    /// Every request is framed before the clock starts (see `VoxsyncFrameRingDialect`); the
    /// speakers go out in order, whichever connection is free sends the next.
    static func run(
        socketPath: String, clients: Int, first: Int = 0, count: Int,
        embedding: (Int) -> [Float]
    ) throws -> (samples: LatencySamples, seconds: Double) {
        try runPrepared(
            socketPath: socketPath, clients: clients, count: count,
            build: { indices in
                try VoxsyncFrameRingDialect.frames(indices.map { putMessage(benchSpeakerID(first + $0), embedding(first + $0)) })
            },
            dialect: { try VoxsyncFrameRingDialect(shared: $0, answer: .putOk(.init())) })
    }

    /// Requests built before the clock starts take ~800 bytes each (an embedding): a run of
    /// more is built and sent this many at a time, each chunk on new connections, so that
    /// millions of writes stay within memory. The clock runs only while a chunk is sent.
    static let chunk = 250_000

    /// `count` requests, `build` making those of the indices given, sent through `clients`
    /// connections of `dialect` that share them; the samples and seconds of all chunks.
    static func runPrepared<Dialect: BenchDialect>(
        socketPath: String, clients: Int, count: Int,
        build: (Range<Int>) throws -> [[UInt8]], dialect: (PreparedRequests) throws -> Dialect
    ) throws -> (samples: LatencySamples, seconds: Double) {
        var samples = LatencySamples(capacity: count)
        var seconds = 0.0
        var start = 0
        while start < count {
            let indices = start..<min(count, start + chunk)
            let prepared = PreparedRequests(try build(indices))
            let run = try ClosedLoopClient.run(socketPath: socketPath, clients: min(clients, indices.count), requests: indices.count) {
                try dialect(prepared)
            }
            samples.merge(run.samples)
            seconds += run.seconds
            start = indices.upperBound
        }
        return (samples, seconds)
    }
}
