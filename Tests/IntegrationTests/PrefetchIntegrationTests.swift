import Foundation
import Testing
import VoxClient
import VoxCore
import VoxStore
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// The prefetch worker with a real voxsyncd: the cache's access events reach it, its lists
/// warm the cache, its history survives a SIGKILL, and `voxsync prefetch predictions` reports.
extension ServiceTests {
    @Suite(.serialized) struct PrefetchIntegrationTests {
        static func speaker(_ index: Int) -> String { "speaker-\(index)" }

        /// A distinct direction per speaker, for any number of speakers.
        static func voice(_ index: Int) -> [Float] {
            (0..<192).map { Float(sin(Double(index * 31 + $0 * 7) + 0.5)) }
        }

        static func enroll(_ client: VoxClient, _ index: Int) async throws {
            var put = Voxsync_V1_PutRequest()
            put.profile.speakerID = speaker(index)
            put.profile.embedding.values = voice(index)
            guard case .putOk = try await client.send(.put(put)) else { throw IntegrationError("no put_ok for \(index)") }
        }

        /// Verifies speaker `index` with its own voice; returns where the answer came from.
        static func verify(_ client: VoxClient, _ index: Int) async throws -> Voxsync_V1_Source {
            var verify = Voxsync_V1_VerifyRequest()
            verify.speakerID = speaker(index)
            verify.probe.values = voice(index)
            guard case .verifyOk(let answer) = try await client.send(.verify(verify)) else { throw IntegrationError("no verify_ok for \(index)") }
            return answer.source
        }

        static func stats(_ client: VoxClient) async throws -> Voxsync_V1_StatsResponse {
            guard case .statsOk(let stats) = try await client.send(.stats(.init())) else { throw IntegrationError("no stats_ok") }
            return stats
        }

        static func predictions(_ service: ServiceProcess, windowSeconds: UInt32 = 0) async throws -> Voxsync_V1_PrefetchPredictionsResponse {
            let client = service.client(socket: service.dataDirectory + "/run/prefetch.sock") { $0.connectTimeout = .seconds(2) }
            defer { client.close() }
            var request = Voxsync_V1_PrefetchPredictionsRequest()
            request.windowSeconds = windowSeconds
            guard case .prefetchPredictionsOk(let report) = try await client.send(.prefetchPredictions(request)) else {
                throw IntegrationError("no prefetch_predictions_ok")
            }
            return report
        }

        /// Runs `argv` with its output (stdout and stderr together) in a file; returns the exit
        /// code and the output.
        static func run(_ argv: [String]) async throws -> (code: Int32, output: String) {
            let output = "/tmp/vxi-cli-" + String(UUID().uuidString.prefix(8))
            defer { try? FileManager.default.removeItem(atPath: output) }
            let quoted = argv.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
            let code = try await runCommand(["/bin/sh", "-c", "\(quoted) >\(output) 2>&1"])
            return (code, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }

        /// Speaker 0 is read every 3 s; right after each read, 20 speakers read nowhere else
        /// push it out of a 4-entry cache. Once the predictor has seen the interval, the
        /// prefetch worker (every 200 ms, looking 1.5 s ahead) must load speaker 0 back before
        /// its next read, which then comes from the cache. (The one-off reads take well under
        /// a tenth of the 1.5 s they have even on a loaded CI machine.)
        ///
        /// Each of the others is read twice at once: SIEVE's hand only goes round (and wears
        /// down speaker 0's visited mark and a prefetched entry's extra turns) past entries that
        /// were read again; behind one-time reads it stays put, and speaker 0 would just stay
        /// cached. The others have no history before or after, so no pattern makes them compete;
        /// the window (1.5 s) is shorter than the gap (3 s), so speaker 0 is sent only after it
        /// has been pushed out, and at most once per gap. The threshold is fixed (not adaptive)
        /// so that the figures of the first rounds cannot move it.
        @Test func aSpeakerReadAtARegularIntervalIsPrefetchedBeforeItsNextRead() async throws {
            let service = try await ServiceProcess.started(settings: [
                "prefetch_interval_ms=200", "prefetch_window_ms=1500", "cache_capacity=4", "prefetch_adaptive=false",
            ])
            defer { service.cleanUp() }
            let client = service.client()
            defer { client.close() }
            let rounds = 10, oneOffsPerRound = 20
            for index in 0...(rounds * oneOffsPerRound) { try await Self.enroll(client, index) }

            let clock = ContinuousClock()
            let start = clock.now
            var sources: [Voxsync_V1_Source] = []
            var loadedBeforeRead: [Double] = []
            var usedAfterRead: [Double] = []
            for round in 0..<rounds {
                try await clock.sleep(until: start + .seconds(3 * round))
                loadedBeforeRead.append(try await Self.stats(client).extra["prefetch_loaded"] ?? -1)
                sources.append(try await Self.verify(client, 0))
                usedAfterRead.append(try await Self.stats(client).extra["prefetch_used"] ?? -1)
                for offset in 1...oneOffsPerRound {
                    _ = try await Self.verify(client, round * oneOffsPerRound + offset)
                    _ = try await Self.verify(client, round * oneOffsPerRound + offset)
                }
            }
            let report = try await Self.predictions(service, windowSeconds: 5)
            let story = "sources by round \(sources.map { $0 == .cache ? "cache" : "sqlite" }), prefetch_loaded before each read \(loadedBeforeRead), prefetch_used after \(usedAfterRead), predictions \(report.predictions.map { "\($0.speakerID) \($0.confidence) \($0.reason)" }), threshold \(report.threshold), total accesses \(report.totalAccesses)"

            #expect(sources[0] == .sqlite, "the first read finds the cache full of the last enrolled: \(story)")
            // The last rounds: speaker 0 was pushed out after its previous read, loaded again by
            // a prefetch list before this read (prefetch_loaded grew in between), and the read
            // was the prefetched entry's first (prefetch_used grew).
            for round in (rounds - 2)..<rounds {
                #expect(sources[round] == .cache, "round \(round): \(story)")
                #expect(loadedBeforeRead[round] > loadedBeforeRead[round - 1], "round \(round) was prefetched: \(story)")
                #expect(usedAfterRead[round] > usedAfterRead[round - 1], "round \(round) used the prefetch: \(story)")
            }
            #expect(report.sentTotal > 0 && report.usedTotal > 0, "\(story)")
        }

        @Test func theHistorySurvivesASigkillOfThePrefetchWorker() async throws {
            let service = try await ServiceProcess.started(settings: ["prefetch_interval_ms=200"])
            defer { service.cleanUp() }
            let client = service.client()
            defer { client.close() }
            for index in 0..<5 { try await Self.enroll(client, index) }
            // Four rounds more than a second apart, each reading every speaker twice: the second
            // read of a round is the same read to the prefetcher (at most one access event per
            // speaker per second), so 20 accesses are learned, not 40.
            for round in 0..<4 {
                if round > 0 { try await Task.sleep(for: .milliseconds(1100)) }
                for index in 0..<5 {
                    _ = try await Self.verify(client, index)
                    _ = try await Self.verify(client, index)
                }
            }
            // The cache batches events every 100 ms; the prefetch worker writes them each second.
            try await eventually("the prefetch worker learned 20 accesses") {
                (try? await Self.predictions(service).totalAccesses) ?? 0 >= 20
            }
            let history = try PrefetchHistoryStore(path: service.dataDirectory + "/prefetch.sqlite")
            try await eventually("20 accesses in prefetch.sqlite") { try history.count() >= 20 }
            let before = try await Self.predictions(service)
            #expect(before.speakers == 5)
            #expect(before.totalAccesses == 20, "one access per speaker and round")
            #expect(try history.count() == 20, "one history row per learned access")

            let victim = service.worker(.prefetch, in: try await service.status()).pid
            kill(victim, SIGKILL)
            try await eventually("the prefetch worker replaced after SIGKILL") {
                let worker = service.worker(.prefetch, in: try await service.status())
                return worker.pid != victim && worker.pid != 0 && worker.state == "ready"
            }
            let after = try await Self.predictions(service)
            #expect(after.totalAccesses >= before.totalAccesses, "replayed from prefetch.sqlite: \(after.totalAccesses) < \(before.totalAccesses)")
            #expect(after.historyEvents >= before.historyEvents)
            #expect(after.speakers == 5)
            try await eventually("the start-up summary says what was replayed") { service.log.contains("events of history") }
        }

        @Test func prefetchPredictionsRefusesABadWindowAndReportsAsJSON() async throws {
            let service = try await ServiceProcess.started()
            defer { service.cleanUp() }
            let voxsync = binDirectory + "/voxsync"
            for (window, fragment) in [("0", "--window must be between 1 and 86400 seconds; got 0"),
                                       ("86401", "--window must be between 1 and 86400 seconds; got 86401"),
                                       ("soon", "The value 'soon' is invalid for '--window <window>'")] {
                let (code, output) = try await Self.run([voxsync, "prefetch", "predictions", "--socket", service.socketPath, "--window", window])
                #expect(code == 64, "usage error: \(output)")
                #expect(output.contains(fragment), "\(output)")
            }

            let (code, output) = try await Self.run([voxsync, "prefetch", "predictions", "--socket", service.socketPath, "--window", "60", "--json"])
            #expect(code == 0, "\(output)")
            let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
            #expect(object?["threshold"] as? Double == 0.7, "\(output)")
            #expect(object?["precision"] as? Double == -1, "nothing measured yet: \(output)")
            #expect(object?["predictions"] is [Any], "\(output)")

            let table = try await Self.run([voxsync, "prefetch", "predictions", "--socket", service.socketPath])
            #expect(table.code == 0 && table.output.contains("threshold   0.70") && table.output.contains("precision   not measured yet"), "\(table.output)")
            let stats = try await Self.run([voxsync, "stats", "--socket", service.socketPath])
            #expect(stats.code == 0 && stats.output.contains("prefetch        0 loaded, 0 read (hits added), 0 evicted unread"), "\(stats.output)")
        }

        @Test func withPrefetchDisabledTheWorkerIdlesAndSaysSo() async throws {
            let service = try await ServiceProcess.started(settings: ["prefetch_enabled=false"])
            defer { service.cleanUp() }
            try await eventually("the start-up summary says prefetch is disabled") {
                service.log.contains("prefetch disabled (prefetch_enabled=false)")
            }
            let (code, output) = try await Self.run([binDirectory + "/voxsync", "prefetch", "predictions", "--socket", service.socketPath, "--timeout", "0.5"])
            #expect(code == 69 && output.contains("prefetch.sock"), "no prefetch socket: \(output)")
        }
    }
}
