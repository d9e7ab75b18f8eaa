import VoxWire

/// Enrolls speakers through the closed-loop client: `clients` connections, each with one
/// write in flight, every write a new speaker. Shared by the enroll benchmark (which measures
/// it) and the benchmarks that need a full store first.
enum EnrollLoad {
    /// Enrolls `bench-<first>` … `bench-<first + count - 1>` with the vectors `embedding(i)`.
    static func run(
        socketPath: String, clients: Int, first: Int = 0, count: Int,
        embedding: @escaping (Int) -> [Float]
    ) throws -> (samples: LatencySamples, seconds: Double) {
        let counter = Counter(next: first)
        return try ClosedLoopClient.run(socketPath: socketPath, clients: clients, requests: count) {
            VoxsyncDialect {
                let index = counter.take()
                return putMessage(benchSpeakerID(index), embedding(index))
            }
        }
    }

    /// The next speaker index; the client is one thread, so a plain class suffices.
    private final class Counter {
        var next: Int
        init(next: Int) { self.next = next }
        func take() -> Int {
            defer { next += 1 }
            return next
        }
    }
}
