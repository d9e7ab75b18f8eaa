import ArgumentParser
import Foundation
import VoxClient
import VoxWire

/// Enrolls synthetic speakers so a newcomer can try everything at once: each speaker is a
/// random unit direction, enrolled with a few noisy samples around it, as real enrollment
/// utterances of one voice cluster around a centre.
struct DemoDataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-data",
        abstract: "Enroll synthetic speakers (demo-0001, ...) and write a probe file to try verify and identify.")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Number of speakers (1-1000000).") var speakers: Int = 100
    @Option(help: "Extra enrollment samples per speaker (0-64).") var samples: Int = 3
    @Option(help: "Random seed, for reproducible data.") var seed: UInt64 = 42
    @Option(help: "Where to write a probe of demo-0001's voice (JSON).") var probeOut: String = "voxsync-demo-probe.json"

    func validate() throws {
        guard (1...1_000_000).contains(speakers) else { throw ValidationError("--speakers must be between 1 and 1000000; got \(speakers)") }
        guard (0...64).contains(samples) else { throw ValidationError("--samples must be between 0 and 64; got \(samples)") }
    }

    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state ^ (state >> 29)
        }
    }

    func run() async throws {
        try await withClient(connection) { client, hello in
            let dimension = Int(hello.embeddingDimension)
            var rng = Generator(state: seed)
            func gaussian() -> Float {
                let u = Float.random(in: Float.ulpOfOne..<1, using: &rng), v = Float.random(in: 0..<1, using: &rng)
                return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
            }
            func unit(_ v: [Float]) -> [Float] {
                let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                return v.map { $0 / norm }
            }
            func around(_ centre: [Float], spread: Float) -> [Float] { unit(centre.map { $0 + spread * gaussian() }) }

            var firstCentre: [Float] = []
            let started = Date()
            // Pipelined in batches: the client keeps up to 64 writes in flight on its connection.
            for batchStart in stride(from: 1, through: speakers, by: 64) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in batchStart..<min(batchStart + 64, speakers + 1) {
                        let centre = unit((0..<dimension).map { _ in gaussian() })
                        if index == 1 { firstCentre = centre }
                        var profile = Profile()
                        profile.speakerID = String(format: "demo-%04d", index)
                        profile.embedding = makeEmbedding(around(centre, spread: 0.03))
                        profile.samples = (0..<samples).map { _ in makeEmbedding(around(centre, spread: 0.03)) }
                        profile.metadata = #"{"demo":true}"#
                        var put = Voxsync_V1_PutRequest()
                        put.profile = profile
                        group.addTask { _ = try await client.send(.put(put)) }
                    }
                    try await group.waitForAll()
                }
            }
            let probe = around(firstCentre, spread: 0.05)
            let json = try JSONSerialization.data(withJSONObject: probe.map { Double($0) })
            guard FileManager.default.createFile(atPath: probeOut, contents: json) else {
                throw EmbeddingFile.Failure(description: "cannot write the probe to \(probeOut)")
            }
            print("enrolled \(speakers) speakers (\(samples + 1) vectors each, \(dimension) dims) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
            print("probe of demo-0001's voice written to \(probeOut); try:")
            print("  voxsync verify demo-0001 --probe \(probeOut)")
            print("  voxsync identify --probe \(probeOut)")
        }
    }
}
