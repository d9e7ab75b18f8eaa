import ArgumentParser

/// `voxsync-bench`: release-build benchmarks that print tables, side by side with the reference
/// tool measured in the same run. `launch/bench` runs them all.
@main
struct VoxsyncBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "voxsync-bench",
        abstract: "Measure voxsync against reference tools.",
        subcommands: [
            FramesBenchmark.self, PingBenchmark.self, VerifyBenchmark.self, IdentifyBenchmark.self,
            EnrollBenchmark.self, StoreBenchmark.self, RestartBenchmark.self, SyncBenchmark.self, PrefetchBenchmark.self, ChaosBenchmark.self,
        ])
}
