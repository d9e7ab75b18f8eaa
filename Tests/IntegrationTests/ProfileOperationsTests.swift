import Foundation
import Testing
import VoxClient
import VoxCore
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// Profile operations end to end: a real voxsyncd, its cache worker and SQLite, through
/// VoxClient over the socket.
extension ServiceTests {
    @Suite(.serialized) struct ProfileOperationsTests {
        static func unit(_ v: [Float]) -> [Float] {
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return v.map { $0 / norm }
        }

        /// A direction per speaker: one-hot-ish, so expected similarities are easy to reason about.
        static func voice(_ index: Int, noise: Float = 0) -> [Float] {
            unit((0..<192).map { $0 == index ? 1 : noise * Float(($0 * 7919 + index) % 13) / 13 })
        }

        func put(_ client: VoxClient, _ id: String, _ vector: [Float], samples: [[Float]] = []) async throws -> UInt64 {
            var put = Voxsync_V1_PutRequest()
            put.profile.speakerID = id
            put.profile.embedding.values = vector
            put.profile.samples = samples.map { var e = Embedding(); e.values = $0; return e }
            guard case .putOk(let ok) = try await client.send(.put(put)) else { throw IntegrationError("no put_ok") }
            return ok.version
        }

        func verify(_ client: VoxClient, _ id: String, _ probe: [Float]) async throws -> Voxsync_V1_VerifyResponse {
            var verify = Voxsync_V1_VerifyRequest()
            verify.speakerID = id
            verify.probe.values = probe
            guard case .verifyOk(let ok) = try await client.send(.verify(verify)) else { throw IntegrationError("no verify_ok") }
            return ok
        }

        @Test func enrollVerifyIdentifyListDelete() async throws {
            let service = try await ServiceProcess.started()
            defer { service.cleanUp() }
            let client = service.client()
            defer { client.close() }

            for index in 0..<20 { _ = try await put(client, "speaker-\(index)", Self.voice(index), samples: [Self.voice(index, noise: 0.02)]) }

            let accepted = try await verify(client, "speaker-3", Self.voice(3, noise: 0.01))
            #expect(accepted.accepted && accepted.score > 0.9 && accepted.threshold == 0.25 && accepted.source == .cache)
            let rejected = try await verify(client, "speaker-3", Self.voice(4))
            #expect(!rejected.accepted && rejected.score < 0.25)

            var identify = Voxsync_V1_IdentifyRequest()
            identify.probe.values = Self.voice(7, noise: 0.01)
            identify.k = 3
            guard case .identifyOk(let found) = try await client.send(.identify(identify)) else { throw IntegrationError("no identify_ok") }
            #expect(found.matches.first?.speakerID == "speaker-7")
            #expect(found.matches.count == 3)

            var list = Voxsync_V1_ListRequest()
            list.prefix = "speaker-1"
            guard case .listOk(let listed) = try await client.send(.list(list)) else { throw IntegrationError("no list_ok") }
            #expect(listed.speakerIds == ["speaker-1"] + (10...19).map { "speaker-\($0)" })

            var delete = Voxsync_V1_DeleteRequest()
            delete.speakerID = "speaker-7"
            guard case .deleteOk(let deleted) = try await client.send(.delete(delete)) else { throw IntegrationError("no delete_ok") }
            #expect(deleted.existed)
            guard case .identifyOk(let after) = try await client.send(.identify(identify)) else { throw IntegrationError("no identify_ok") }
            #expect(after.matches.first?.speakerID != "speaker-7")
            let gone = await #expect(throws: VoxClientError.self) { try await verify(client, "speaker-7", Self.voice(7)) }
            #expect(gone?.code == .server(.notFound))
        }

        @Test func badProfilesAreRefusedWithTheFieldNamed() async throws {
            let service = try await ServiceProcess.started()
            defer { service.cleanUp() }
            let client = service.client()
            defer { client.close() }
            let short = await #expect(throws: VoxClientError.self) { try await put(client, "a", [1, 0, 0]) }
            #expect(short?.code == .server(.dimensionMismatch) && short?.field == "embedding")
            let zero = await #expect(throws: VoxClientError.self) { try await put(client, "a", [Float](repeating: 0, count: 192)) }
            #expect(zero?.code == .server(.invalidArgument) && zero?.message.contains("zero norm") == true)
            let badID = await #expect(throws: VoxClientError.self) { try await put(client, "a\u{7}", Self.voice(1)) }
            #expect(badID?.field == "speaker_id")
            guard case .statsOk(let stats) = try await client.send(.stats(.init())) else { throw IntegrationError("no stats") }
            #expect(stats.profiles == 0 && stats.outboxPending == 0, "nothing was written")
        }

        @Test func acknowledgedWritesSurviveKillingTheCacheWorkerAndTheSupervisor() async throws {
            let first = try await ServiceProcess.started()
            defer { first.cleanUp() }
            let client = first.client()
            var versions: [String: UInt64] = [:]
            for index in 0..<50 { versions["speaker-\(index)"] = try await put(client, "speaker-\(index)", Self.voice(index)) }
            client.close()

            // SIGKILL the cache worker: its replacement reloads everything from SQLite.
            let victim = first.worker(.cache, in: try await first.status()).pid
            kill(victim, SIGKILL)
            try await eventually(timeout: .seconds(30), "a new cache worker ready") {
                guard let status = try? await first.status() else { return false }
                let cache = first.worker(.cache, in: status)
                return cache.pid != victim && cache.state == "ready"
            }
            let again = first.client()
            defer { again.close() }
            #expect(try await verify(again, "speaker-49", Self.voice(49)).accepted)

            // SIGKILL the whole service, start a new one on the same data directory.
            first.signal(SIGKILL)
            try await eventually("the first supervisor is gone") { !first.process.isRunning }
            let second = try ServiceProcess(dataDirectory: first.dataDirectory)
            defer { second.cleanUp() }
            try await second.waitUntilAllReady()
            let reader = second.client()
            defer { reader.close() }
            for (id, version) in versions {
                var get = Voxsync_V1_GetRequest()
                get.speakerID = id
                guard case .getOk(let ok) = try await reader.send(.get(get)) else { throw IntegrationError("no get_ok") }
                #expect(ok.profile.version == version, "\(id)")
            }
            guard case .statsOk(let stats) = try await reader.send(.stats(.init())) else { throw IntegrationError("no stats") }
            #expect(stats.profiles == 50 && stats.outboxPending == 50)
        }
    }
}
