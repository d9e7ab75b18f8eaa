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
        let frames = try VoxsyncFrameRingDialect.frames((first..<first + count).map { putMessage(benchSpeakerID($0), embedding($0)) })
        let shared = PreparedRequests(frames)
        return try ClosedLoopClient.run(socketPath: socketPath, clients: clients, requests: count) {
            try VoxsyncFrameRingDialect(shared: shared, answer: .putOk(.init()))
        }
    }
}
