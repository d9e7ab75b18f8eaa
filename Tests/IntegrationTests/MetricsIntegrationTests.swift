import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import VoxClient
import VoxCore
import VoxTransport
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// The metrics worker end to end: real supervisor and workers, scraped over HTTP.
extension ServiceTests {
    @Suite(.serialized) struct MetricsIntegrationTests {
                static func scrape(_ port: Int, path: String = "/metrics", accept: String? = nil) async throws -> (status: Int, body: String, contentType: String) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            if let accept { request.setValue(accept, forHTTPHeaderField: "Accept") }
            let (data, response) = try await URLSession.shared.data(for: request)
            let http = response as! HTTPURLResponse
            return (http.statusCode, String(decoding: data, as: UTF8.self), http.value(forHTTPHeaderField: "Content-Type") ?? "")
        }

        /// The value of one sample line (`name{labels} value`), or nil when it is absent.
        static func value(_ text: String, _ series: String) -> Double? {
            for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
                return Double(line.dropFirst(series.count + 1))
            }
            return nil
        }

        static func put(_ client: VoxClient, _ id: String, seed: Int) async throws {
            var put = Voxsync_V1_PutRequest()
            put.profile.speakerID = id
            put.profile.embedding.values = (0..<192).map { Float(sin(Double(seed * 192 + $0))) + 1.1 }
            guard case .putOk = try await client.send(.put(put)) else { throw IntegrationError("no put_ok") }
        }

        static func verify(_ client: VoxClient, _ id: String, seed: Int) async throws {
            var verify = Voxsync_V1_VerifyRequest()
            verify.speakerID = id
            verify.probe.values = (0..<192).map { Float(sin(Double(seed * 192 + $0))) + 1.1 }
            guard case .verifyOk = try await client.send(.verify(verify)) else { throw IntegrationError("no verify_ok") }
        }

        @Test func scrapedCountersEqualWhatWasDoneAndSurviveAMetricsWorkerKill() async throws {
            let port = try #require(LoopbackPort.unused())
            let service = try await ServiceProcess.started(settings: ["metrics_address=127.0.0.1:\(port)", "metrics_namespace=jarvis"])
            defer { service.cleanUp() }
            let client = service.client()
            defer { client.close() }
            let (enrolls, verifies) = (30, 70)
            for index in 0..<enrolls { try await Self.put(client, "speaker-\(index)", seed: index) }
            for index in 0..<verifies { try await Self.verify(client, "speaker-\(index % enrolls)", seed: index % enrolls) }

            var before = ""
            try await eventually(timeout: .seconds(10), "the scrape shows every request") {
                before = try await Self.scrape(port).body
                return Self.value(before, "jarvis_queries_total{type=\"verify\"}") == Double(verifies)
                    && Self.value(before, "jarvis_queries_total{type=\"put\"}") == Double(enrolls)
                    && Self.value(before, "jarvis_syncs_total{status=\"success\"}") != nil
                    // The sync worker sets its gauges after each cycle: a snapshot later.
                    && Self.value(before, "jarvis_queue_size") == Double(enrolls)
            }
            #expect(Self.value(before, "jarvis_cache_hits_total") == Double(verifies), "every verify hit the cache: enrolls admit")
            let readCount = (Self.value(before, "jarvis_read_latency_seconds_count{source=\"cache\"}") ?? 0)
                + (Self.value(before, "jarvis_read_latency_seconds_count{source=\"sqlite\"}") ?? 0)
            #expect(readCount == Double(verifies), "the read histogram counts the same verifies")
            #expect(Self.value(before, "jarvis_write_latency_seconds_count") == Double(enrolls))
            #expect(Self.value(before, "jarvis_worker_up{worker=\"cache\"}") == 1)
            #expect(Self.value(before, "jarvis_circuit_state") == 0)
            // (jarvis_queue_size == 30 above: no PostgreSQL configured, the outbox waits.)

            if let promtool = ProcessInfo.processInfo.environment["VOXSYNC_TEST_PROMTOOL"] {
                #expect(try await Self.promtoolCheck(promtool, before) == 0, "promtool check metrics accepts the exposition")
            }

            // SIGKILL the metrics worker: its successor shows the same totals at its first scrape.
            let metricsPID = service.worker(.metrics, in: try await service.status()).pid
            kill(metricsPID, SIGKILL)
            try await eventually(timeout: .seconds(15), "a new metrics worker ready") {
                let worker = service.worker(.metrics, in: try await service.status())
                return worker.state == "ready" && worker.pid != metricsPID
            }
            // Usually whole at the first scrape (the new worker waits up to 1.5 s for the
            // snapshots); on a loaded machine a sender's reconnect backoff can outlast that wait,
            // so the totals are polled: what is checked is that none is lost or double counted.
            let totals = ["jarvis_queries_total{type=\"verify\"}", "jarvis_queries_total{type=\"put\"}", "jarvis_cache_hits_total",
                          "jarvis_write_latency_seconds_count"]
            var after = ""
            try? await eventually(timeout: .seconds(20), "the totals back after the restart") {
                after = (try? await Self.scrape(port).body) ?? ""
                return totals.allSatisfy { Self.value(after, $0) != nil }
            }
            for series in totals {
                #expect(Self.value(after, series) == Self.value(before, series), "\(series) after the restart:\n\(after)")
            }
            try await eventually(timeout: .seconds(20), "the supervisor's figures show the restart") {
                Self.value(try await Self.scrape(port).body, "jarvis_worker_restarts_total{worker=\"metrics\"}") == 1
            }

            let health = try await Self.scrape(port, path: "/healthz")
            #expect(health.status == 200 && health.body == "ok\n")
            #expect(try await Self.scrape(port, path: "/nope").status == 404)
            let open = try await Self.scrape(port, accept: "application/openmetrics-text; version=1.0.0")
            #expect(open.contentType.hasPrefix("application/openmetrics-text") && open.body.hasSuffix("# EOF\n"))
        }

        @Test func aTakenPortLeavesTheServiceRunningWithoutTheEndpoint() async throws {
            // Something else holds the port: the metrics worker says so, everything else serves.
            let blocker = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(blocker) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(blocker, $0, length) } }
            listen(blocker, 1)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(blocker, $0, &length) } }
            let port = Int(UInt16(bigEndian: address.sin_port))

            let service = try await ServiceProcess.started(settings: ["metrics_address=127.0.0.1:\(port)"])
            defer { service.cleanUp() }
            let client = service.client()
            defer { client.close() }
            try await Self.put(client, "still-serving", seed: 1)
            #expect(service.log.contains("cannot serve Prometheus metrics"))
            #expect(service.worker(.metrics, in: try await service.status()).restarts == 0, "not a crash loop")
        }

        static func promtoolCheck(_ promtool: String, _ text: String) async throws -> Int32 {
            let file = NSTemporaryDirectory() + "voxsync-metrics-\(UUID().uuidString).txt"
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            return try await runCommand(["/bin/sh", "-c", "\"$0\" check metrics < \"$1\"", promtool, file])
        }
    }
}
