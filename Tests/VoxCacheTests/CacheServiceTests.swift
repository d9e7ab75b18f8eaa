import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import VoxCore
import VoxStore
import VoxTestSupport
import VoxWire
@testable import VoxCache
@testable import VoxTransport

/// The cache worker's service driven directly, without a socket: what it answers from memory,
/// what it reads from SQLite, and what it keeps across a restart.
@Suite struct CacheServiceTests {
    static let dimension = 8
    let path = NSTemporaryDirectory() + "voxsync-cache-\(UUID().uuidString).sqlite"

    /// A service on a loop of its own; `body` runs with it, and it is shut down afterwards.
    func withService<T>(
        capacity: Int, preloadInBackground: Bool = false, installPreloadAfter gate: EventLoopPromise<Void>? = nil,
        _ body: (CacheService) async throws -> T
    ) async throws -> T {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let service = try CacheService(
            configuration: StoreConfiguration(path: path, dimension: Self.dimension, origin: "test-instance"),
            cacheCapacity: capacity, preloadInBackground: preloadInBackground, installPreloadAfter: gate?.futureResult, loop: group.next())
        do {
            let result = try await body(service)
            try await service.shutdown()
            try await group.shutdownGracefully()
            return result
        } catch {
            try? await service.shutdown()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    func send(_ service: CacheService, _ request: Envelope.OneOf_Message) async throws -> Envelope.OneOf_Message {
        let connection = ConnectionInfo(eventLoop: service.loop, peer: PeerCredentials(pid: 0, uid: 0, gid: 0))
        switch try await service.loop.submit({ service.respond(to: request, connection: connection) }).get() {
        case .now(let answer): return answer
        case .later(let future): return try await future.get()
        }
    }

    /// A distinct direction per speaker number.
    static func vector(_ speaker: Int) -> [Float] {
        (0..<dimension).map { Float(sin(Double(speaker * 31 + $0 * 7) + 0.5)) }
    }

    static func speaker(_ number: Int) -> String { "speaker-\(number)" }

    func enroll(_ service: CacheService, _ number: Int, samples: [[Float]] = []) async throws {
        var put = Voxsync_V1_PutRequest()
        put.profile.speakerID = Self.speaker(number)
        put.profile.embedding.values = Self.vector(number)
        put.profile.samples = samples.map { var e = Embedding(); e.values = $0; return e }
        guard case .putOk = try await send(service, .put(put)) else { throw CacheTestError("enroll of \(number) failed") }
    }

    /// Verifies speaker `number` with its own vector; returns where the answer came from.
    func verify(_ service: CacheService, _ number: Int) async throws -> Voxsync_V1_Source {
        var verify = Voxsync_V1_VerifyRequest()
        verify.speakerID = Self.speaker(number)
        verify.probe.values = Self.vector(number)
        guard case .verifyOk(let answer) = try await send(service, .verify(verify)) else { throw CacheTestError("verify of \(number) failed") }
        #expect(answer.accepted && abs(answer.score - 1) < 1e-5, "a speaker's own vector scores 1")
        return answer.source
    }

    /// A read that missed the cache and a write of the same speaker, pipelined on one
    /// connection: the store thread finishes the read (the old version) first and the commit
    /// right after, while the loop is busy. The cache must end with the write: the store's
    /// results are applied in the order the store finished them, so the read cannot put the
    /// older version back over the acknowledged one.
    @Test func aMissedReadBeforeAWriteNeverPutsTheOlderVersionBack() async throws {
        try await withService(capacity: 1) { service in
            try await enroll(service, 1)
            try await enroll(service, 2)  // capacity 1: speaker 1 now lives only in SQLite
            let connection = ConnectionInfo(eventLoop: service.loop, peer: PeerCredentials(pid: 0, uid: 0, gid: 0))
            var get = Voxsync_V1_GetRequest()
            get.speakerID = Self.speaker(1)
            var put = Voxsync_V1_PutRequest()
            put.profile.speakerID = Self.speaker(1)
            put.profile.embedding.values = Self.vector(3)
            let (read, write) = try await service.loop.submit { [get, put] in
                let read = service.respond(to: .get(get), connection: connection)
                let write = service.respond(to: .put(put), connection: connection)
                // The loop stays busy while the store thread reads and then commits.
                service.loop.execute { usleep(100_000) }
                return (read, write)
            }.get()
            func answer(_ response: ServerResponse) async throws -> Envelope.OneOf_Message {
                switch response {
                case .now(let answer): return answer
                case .later(let future): return try await future.get()
                }
            }
            guard case .getOk(let old) = try await answer(read), old.source == .sqlite else { throw CacheTestError("the read was not a miss") }
            guard case .putOk(let written) = try await answer(write) else { throw CacheTestError("the write failed") }
            #expect(old.profile.version < written.version)
            guard case .getOk(let now) = try await send(service, .get(get)) else { throw CacheTestError("no get") }
            #expect(now.profile.version == written.version && now.source == .cache, "the cache holds the acknowledged write")
            var verify = Voxsync_V1_VerifyRequest()
            verify.speakerID = Self.speaker(1)
            verify.probe.values = Self.vector(3)
            guard case .verifyOk(let verdict) = try await send(service, .verify(verify)) else { throw CacheTestError("no verify") }
            #expect(abs(verdict.score - 1) < 1e-5, "verify scores against the written embedding")
        }
    }

    /// A vector that names another model than the store's is refused, naming the field, and
    /// nothing is written; the store's own tag, or none, is accepted.
    /// Writes that come after the store's thread stopped (the worker is shutting down) are
    /// answered UNAVAILABLE, none left waiting; the second shows the first's batch was
    /// finished, so the group commit did not stall.
    @Test(.timeLimit(.minutes(1))) func writesAfterTheStoreStoppedAreAnsweredUnavailable() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let service = try CacheService(
            configuration: StoreConfiguration(path: path, dimension: Self.dimension, origin: "test-instance"),
            cacheCapacity: 10, loop: group.next())
        try await enroll(service, 1)
        try await service.shutdown()
        for number in 2...3 {
            var put = Voxsync_V1_PutRequest()
            put.profile.speakerID = Self.speaker(number)
            put.profile.embedding.values = Self.vector(number)
            let answer = try await send(service, .put(put))
            guard case .error(let error) = answer else {
                Issue.record("write \(number) after the shutdown was answered \(answer)")
                continue
            }
            #expect(error.code == .unavailable, "\(error.message)")
        }
        try await group.shutdownGracefully()
        let store = try ProfileStore(configuration: StoreConfiguration(path: path, dimension: Self.dimension, origin: "test-instance"))
        #expect(try store.get(Self.speaker(1)) != nil, "the write before the shutdown is there")
        #expect(try store.get(Self.speaker(2)) == nil && store.get(Self.speaker(3)) == nil, "nothing was written after it")
    }

    @Test func vectorsOfAnotherModelAreRefusedByField() async throws {
        try await withService(capacity: 10) { service in
            func refusal(_ request: Envelope.OneOf_Message) async throws -> Voxsync_V1_Error? {
                guard case .error(let error) = try await send(service, request) else { return nil }
                return error
            }
            var put = Voxsync_V1_PutRequest()
            put.profile.speakerID = "mixed"
            put.profile.embedding.values = Self.vector(1)
            put.profile.embedding.model = "wavlm-base-plus"
            let onEmbedding = try await refusal(.put(put))
            #expect(onEmbedding?.code == .invalidArgument && onEmbedding?.field == "embedding.model")
            #expect(onEmbedding?.message.contains("'ecapa-tdnn-192'") == true)
            put.profile.embedding.model = ""
            put.profile.samples = [Self.vector(2), Self.vector(3)].map { var e = Embedding(); e.values = $0; return e }
            put.profile.samples[1].model = "other"
            #expect(try await refusal(.put(put))?.field == "samples[1].model")
            var get = Voxsync_V1_GetRequest()
            get.speakerID = "mixed"
            #expect(try await refusal(.get(get))?.code == .notFound, "nothing was written")

            put.profile.samples[1].model = ProfileRules.defaultModel
            put.profile.embedding.model = ProfileRules.defaultModel
            guard case .putOk = try await send(service, .put(put)) else { throw CacheTestError("the store's own model was refused") }
            var verify = Voxsync_V1_VerifyRequest()
            verify.speakerID = "mixed"
            verify.probe.values = Self.vector(1)
            verify.probe.model = "x-vector"
            #expect(try await refusal(.verify(verify))?.field == "probe.model")
            var identify = Voxsync_V1_IdentifyRequest()
            identify.probe = verify.probe
            #expect(try await refusal(.identify(identify))?.field == "probe.model")
            verify.probe.model = ProfileRules.defaultModel
            guard case .verifyOk(let answer) = try await send(service, .verify(verify)) else { throw CacheTestError("verify with the store's model failed") }
            #expect(answer.accepted)
        }
    }

    /// Identify scans a snapshot of the matrix without the state lock, on the scan thread. While
    /// a scan is held (between its snapshot and its scan), a verify is answered from the cache
    /// and an enroll commits and enters the matrix; the held identify then answers from the matrix as it was
    /// when it came — without the new speaker, whose own vector it was asked about — and the
    /// next identify finds the new speaker. If the scan held the lock, the verify would wait
    /// for the scan, the scan for the test (10 s), and the test would fail.
    @Test func identifyScansASnapshotWhileVerifiesAndWritesGoOn() async throws {
        try await withService(capacity: 1000) { service in
            for number in 0..<50 { try await enroll(service, number) }
            let scanning = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
            let releasedInTime = NIOLockedValueBox<Bool?>(nil), onALoop = NIOLockedValueBox<Bool?>(nil)
            let other = MultiThreadedEventLoopGroup.singleton.next()
            service.locked {
                service.identifyWillScan = {
                    onALoop.withLockedValue { $0 = other.inEventLoop || service.loop.inEventLoop }
                    scanning.signal()
                    let released = release.wait(timeout: .now() + 10) == .success
                    releasedInTime.withLockedValue { $0 = released }
                }
            }
            let connection = ConnectionInfo(eventLoop: other, peer: PeerCredentials(pid: 0, uid: 0, gid: 0))
            var identify = Voxsync_V1_IdentifyRequest()
            identify.probe.values = Self.vector(1000)
            identify.k = 3
            let request = Envelope.OneOf_Message.identify(identify)
            let held = other.submit { service.respond(to: request, connection: connection) }
            let reached = await offCooperativePool { scanning.wait(timeout: .now() + 30) == .success }
            try #require(reached, "the identify never reached its scan")
            #expect(onALoop.withLockedValue { $0 } == false, "the scan runs on the scan thread, not on an event loop")

            #expect(try await verify(service, 7) == .cache, "a verify is answered while the scan is held")
            try await enroll(service, 1000)
            release.signal()
            guard case .later(let scan) = try await held.get(), case .identifyOk(let before) = try await scan.get() else {
                throw CacheTestError("the held identify failed")
            }
            #expect(releasedInTime.withLockedValue { $0 } == true, "the verify and the enroll finished while the scan was held")
            #expect(before.matches.count == 3 && !before.matches.contains { $0.speakerID == Self.speaker(1000) },
                    "the held scan answers from its snapshot: \(before.matches.map(\.speakerID))")

            service.locked { service.identifyWillScan = nil }
            guard case .identifyOk(let after) = try await send(service, request) else { throw CacheTestError("identify failed") }
            #expect(after.matches.first?.speakerID == Self.speaker(1000) && abs((after.matches.first?.score ?? 0) - 1) < 1e-5)
        }
    }

    /// A worker restarted with a background preload serves at once; what is written, deleted
    /// or read while the preload runs is what it holds afterwards, and identify (which needs
    /// every embedding) is answered from the complete matrix.
    @Test func aBackgroundPreloadKeepsWhatHappenedWhileItRan() async throws {
        try await withService(capacity: 1000) { service in
            for number in 0..<300 { try await enroll(service, number) }
        }
        // The finished preload is held back until the operations below are done, so they all
        // happen while it "runs": after its snapshot, before its install.
        let gateLoop = MultiThreadedEventLoopGroup.singleton.next()
        let gate = gateLoop.makePromise(of: Void.self)
        try await withService(capacity: 1000, preloadInBackground: true, installPreloadAfter: gate) { service in
            var identify = Voxsync_V1_IdentifyRequest()
            identify.probe.values = Self.vector(7)
            identify.k = 3
            let earlyRequest = Envelope.OneOf_Message.identify(identify)
            async let early = send(service, earlyRequest)
            var delete = Voxsync_V1_DeleteRequest()
            delete.speakerID = Self.speaker(1)
            let deleteRequest = Envelope.OneOf_Message.delete(delete)
            async let deleted = send(service, deleteRequest)
            var put = Voxsync_V1_PutRequest()
            put.profile.speakerID = Self.speaker(2)
            put.profile.embedding.values = Self.vector(1002)
            let putRequest = Envelope.OneOf_Message.put(put)
            async let replaced = send(service, putRequest)
            guard case .deleteOk = try await deleted, case .putOk = try await replaced else {
                throw CacheTestError("an operation during the preload failed")
            }
            #expect(try await verify(service, 3) == .sqlite, "served during the preload, from SQLite")
            #expect(try await service.loop.submit { service.locked { service.preloading && service.touchedDuringPreload.count == 2 } }.get())
            gate.succeed()
            guard case .identifyOk(let first) = try await early else { throw CacheTestError("identify failed") }
            #expect(first.matches.first?.speakerID == Self.speaker(7), "identify waited for every embedding")
            try await service.preloadFinished.get()

            var get = Voxsync_V1_GetRequest()
            get.speakerID = Self.speaker(1)
            guard case .error(let missing) = try await send(service, .get(get)) else { throw CacheTestError("deleted speaker found") }
            #expect(missing.code == .notFound)
            identify.probe.values = Self.vector(1)
            guard case .identifyOk(let gone) = try await send(service, .identify(identify)) else { throw CacheTestError("no identify") }
            #expect(!gone.matches.contains { $0.speakerID == Self.speaker(1) }, "the deleted speaker left the matrix")
            identify.probe.values = Self.vector(1002)
            guard case .identifyOk(let moved) = try await send(service, .identify(identify)) else { throw CacheTestError("no identify") }
            #expect(moved.matches.first?.speakerID == Self.speaker(2) && abs((moved.matches.first?.score ?? 0) - 1) < 1e-5,
                    "the rewritten embedding replaced the preload's")
            get.speakerID = Self.speaker(2)
            guard case .getOk(let two) = try await send(service, .get(get)) else { throw CacheTestError("no profile") }
            #expect(two.profile.embedding.values == Self.vector(1002))
            guard case .statsOk(let stats) = try await send(service, .stats(.init())) else { throw CacheTestError("no stats") }
            #expect(stats.profiles == 299 && stats.cacheEntries == 299)
            #expect(try await verify(service, 3) == .cache)
        }
    }

    @Test func aScanOfOneOffSpeakersDoesNotEvictTheOnesWhoUnlockEveryDay() async throws {
        let regulars = 0..<10
        let others = 100..<400
        try await withService(capacity: 15) { service in
            for number in regulars { try await enroll(service, number) }
            for number in others { try await enroll(service, number) }  // fills the cache with others
            for number in regulars { _ = try await verify(service, number) }  // warm: read back from SQLite
            for number in regulars  {
                let source = try await verify(service, number)
                #expect(source == .cache)
            }

            // Scans of 100 speakers each (an admin check, a bulk re-verify) between the
            // regulars' daily unlocks: 100 one-off reads through a cache of 15.
            for scan in 0..<3 {
                for number in others.dropFirst(scan * 100).prefix(100) {
                    let source = try await verify(service, number)
                    #expect(source == .sqlite, "a one-off read is a miss")
                }
                for number in regulars {
                    let source = try await verify(service, number)
                    #expect(source == .cache, "regular \(number) after scan \(scan)")
                }
            }
            guard case .statsOk(let stats) = try await send(service, .stats(.init())) else { throw CacheTestError("no stats") }
            #expect(stats.cacheEntries <= 15 && stats.cacheCapacity == 15)
            #expect(stats.profiles == 310, "the identify matrix holds every live profile, cached or not")
        }
    }

    @Test func aRestartPreloadsTheMostRecentlyUsedProfilesFirst() async throws {
        try await withService(capacity: 100) { service in
            for number in 0..<20 { try await enroll(service, number) }
            for number in [3, 7, 11] { _ = try await verify(service, number) }
        }  // shutting down writes the access times
        try await withService(capacity: 5) { service in
            for number in [3, 7, 11]  {
                let source = try await verify(service, number)
                #expect(source == .cache, "used recently: preloaded")
            }
            // The other two places go to the most recently written of the rest.
            for number in [19, 18]  {
                let source = try await verify(service, number)
                #expect(source == .cache, "written last: preloaded")
            }
            let source = try await verify(service, 0)
            #expect(source == .sqlite, "neither used nor recently written: not preloaded")
        }
    }

    /// Connections on other loops are answered on their own loops, under the service's lock:
    /// writes, reads that hit and miss, deletes and identify from two loops at once, with a
    /// cache too small for the speakers, end in the state one loop would have reached.
    @Test(.timeLimit(.minutes(2))) func requestsFromSeveralLoopsAtOnceLeaveAConsistentState() async throws {
        let others = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = [others.next(), others.next()]
        defer { others.shutdownGracefully { _ in } }
        try await withService(capacity: 16) { service in
            func send(_ request: Envelope.OneOf_Message, from loop: EventLoop) async throws -> Envelope.OneOf_Message {
                let connection = ConnectionInfo(eventLoop: loop, peer: PeerCredentials(pid: 0, uid: 0, gid: 0))
                switch try await loop.submit({ service.respond(to: request, connection: connection) }).get() {
                case .now(let answer): return answer
                case .later(let future): return try await future.hop(to: loop).get()
                }
            }
            func put(_ number: Int) -> Envelope.OneOf_Message {
                var put = Voxsync_V1_PutRequest()
                put.profile.speakerID = Self.speaker(number)
                put.profile.embedding.values = Self.vector(number)
                return .put(put)
            }
            func verify(_ number: Int) -> Envelope.OneOf_Message {
                var verify = Voxsync_V1_VerifyRequest()
                verify.speakerID = Self.speaker(number)
                verify.probe.values = Self.vector(number)
                return .verify(verify)
            }
            // 64 speakers, written from both loops; each loop then reads every speaker
            // (most miss: the cache holds 16), deletes its odd ones, and identifies.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (side, loop) in loops.enumerated() {
                    group.addTask {
                        for number in stride(from: side, to: 64, by: 2) {
                            guard case .putOk = try await send(put(number), from: loop) else { throw CacheTestError("put \(number)") }
                        }
                    }
                }
                try await group.waitForAll()
                for (side, loop) in loops.enumerated() {
                    group.addTask {
                        for round in 0..<3 {
                            for number in 0..<64 {
                                guard case .verifyOk(let verdict) = try await send(verify(number), from: loop) else {
                                    throw CacheTestError("verify \(number) round \(round)")
                                }
                                guard verdict.accepted, abs(verdict.score - 1) < 1e-4 else { throw CacheTestError("verify \(number): \(verdict)") }
                            }
                        }
                        var identify = Voxsync_V1_IdentifyRequest()
                        identify.probe.values = Self.vector(side)
                        identify.k = 1
                        guard case .identifyOk(let found) = try await send(.identify(identify), from: loop),
                              found.matches.first?.speakerID == Self.speaker(side) else { throw CacheTestError("identify \(side)") }
                    }
                }
                try await group.waitForAll()
                for (side, loop) in loops.enumerated() {
                    group.addTask {
                        for number in stride(from: 1 + 2 * side, to: 64, by: 4) {
                            var delete = Voxsync_V1_DeleteRequest()
                            delete.speakerID = Self.speaker(number)
                            guard case .deleteOk = try await send(.delete(delete), from: loop) else { throw CacheTestError("delete \(number)") }
                        }
                    }
                }
                try await group.waitForAll()
            }
            guard case .statsOk(let stats) = try await self.send(service, .stats(.init())) else { throw CacheTestError("stats") }
            #expect(stats.profiles == 32, "the 32 even speakers are left")
            #expect(stats.cacheEntries <= 16 && stats.cacheEntries > 0)
            #expect(stats.cacheHits + stats.cacheMisses == 2 * 3 * 64, "every read counted once")
            for number in 0..<64 {
                let answer = try await send(verify(number), from: loops[number % 2])
                if number % 2 == 0 {
                    guard case .verifyOk(let verdict) = answer, verdict.accepted else { throw CacheTestError("\(number) should verify: \(answer)") }
                } else {
                    guard case .error(let error) = answer, error.code == .notFound else {
                        throw CacheTestError("\(number) was deleted: \(answer)")
                    }
                }
            }
        }
    }

    /// Writers of one speaker whose writes share group commits: each reads its own write (or a
    /// newer one) right after its answer, every write gets a version of its own, and the cache
    /// ends with the newest version and its embedding, not an older batch's.
    @Test(.timeLimit(.minutes(2))) func concurrentWritersOfOneSpeakerReadTheirOwnWritesAndTheNewestStays() async throws {
        try await withService(capacity: 16) { service in
            let writers = 16, rounds = 20
            let acknowledged = try await withThrowingTaskGroup(of: [(version: UInt64, writer: Int)].self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        var mine: [(version: UInt64, writer: Int)] = []
                        for _ in 0..<rounds {
                            var put = Voxsync_V1_PutRequest()
                            put.profile.speakerID = "shared"
                            put.profile.embedding.values = Self.vector(writer)
                            guard case .putOk(let written) = try await self.send(service, .put(put)) else { throw CacheTestError("put by \(writer)") }
                            var get = Voxsync_V1_GetRequest()
                            get.speakerID = "shared"
                            guard case .getOk(let read) = try await self.send(service, .get(get)) else { throw CacheTestError("get by \(writer)") }
                            guard read.profile.version >= written.version else {
                                throw CacheTestError("writer \(writer) wrote version \(written.version) and then read \(read.profile.version)")
                            }
                            mine.append((written.version, writer))
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(acknowledged.count == writers * rounds)
            #expect(Set(acknowledged.map(\.version)).count == acknowledged.count, "every write has a version of its own")
            let newest = try #require(acknowledged.max { $0.version < $1.version })
            var get = Voxsync_V1_GetRequest()
            get.speakerID = "shared"
            guard case .getOk(let read) = try await send(service, .get(get)) else { throw CacheTestError("final get") }
            #expect(read.source == .cache)
            #expect(read.profile.version == newest.version)
            #expect(read.profile.embedding.values == Self.vector(newest.writer), "the newest write's embedding, not an older batch's")
        }
    }

    /// A group commit's answers leave before the cache has taken its versions (the loops'
    /// wake-ups overlap that work), but under the same hold of the lock: a read sent the moment
    /// a write is acknowledged must still find the new version. The test holds each commit for
    /// 20 ms between the two, which a read would get into were the lock released in between.
    @Test(.timeLimit(.minutes(2))) func aReadSentAsSoonAsAWriteIsAcknowledgedFindsTheWrite() async throws {
        try await withService(capacity: 1024) { service in
            let speakers = 400
            for number in 0..<speakers {
                try await enroll(service, number)
                var get = Voxsync_V1_GetRequest()
                get.speakerID = Self.speaker(number)
                _ = try await send(service, .get(get))  // cached, whatever a write does to the cache
            }
            service.locked { service.commitWillApply = { usleep(20_000) } }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for number in 0..<speakers {
                    group.addTask {
                        var put = Voxsync_V1_PutRequest()
                        put.profile.speakerID = Self.speaker(number)
                        put.profile.embedding.values = Self.vector(number + speakers)
                        guard case .putOk(let written) = try await self.send(service, .put(put)) else { throw CacheTestError("replace of \(number)") }
                        var get = Voxsync_V1_GetRequest()
                        get.speakerID = Self.speaker(number)
                        guard case .getOk(let read) = try await self.send(service, .get(get)) else { throw CacheTestError("get of \(number)") }
                        #expect(read.profile.version == written.version, "speaker \(number): acknowledged \(written.version), then read \(read.profile.version)")
                        #expect(read.profile.embedding.values == Self.vector(number + speakers))
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// The group-commit queue has a lock of its own: a write queues, and its commit starts,
    /// while the cache is still taking the versions of the commit before, which holds the
    /// cache's lock. The test holds that commit inside the cache's work until it has seen the
    /// second write reach the queue; were the queue behind the cache's lock, looking at it
    /// would wait until the hold gives up (5 s), and the test fails on that.
    @Test(.timeLimit(.minutes(1))) func aWriteQueuesWhileTheCacheTakesTheLastCommit() async throws {
        try await withService(capacity: 64) { service in
            let gate = NIOLockedValueBox((applying: false, released: false, gaveUp: false))
            service.locked {
                service.commitWillApply = {
                    gate.withLockedValue { $0.applying = true }
                    let deadline = NIODeadline.now() + .seconds(5)
                    while !gate.withLockedValue({ $0.released }) {
                        guard NIODeadline.now() < deadline else { return gate.withLockedValue { $0.gaveUp = true } }
                        usleep(500)
                    }
                }
            }
            async let first = enroll(service, 1)
            while !gate.withLockedValue({ $0.applying }) { try await Task.sleep(for: .milliseconds(1)) }
            #expect(service.queued { !service.commits.isCommitting && service.commits.waitingCount == 0 }, "the first batch is done as far as the queue knows")
            async let second = enroll(service, 2)
            // The second write finds the queue expecting one write (the first batch's) and
            // starts its batch at once; the store's thread runs it after the cache's work.
            var started = false
            for _ in 0..<2000 where !started {
                started = service.queued { service.commits.isCommitting }
                if !started { try await Task.sleep(for: .milliseconds(1)) }
            }
            let stillHeld = gate.withLockedValue { state in
                defer { state.released = true }
                return !state.gaveUp
            }
            try await first
            try await second
            #expect(started, "the second write reached the queue")
            #expect(stillHeld, "…while the first commit still held the cache")
            for number in [1, 2] { #expect(try await verify(service, number) == .cache) }
        }
    }

    @Test func aCachedProfileComesBackWholeAndScoresAsTheMeanCosine() async throws {
        let samples = [Self.vector(50), Self.vector(51).map { $0 * 3 }]
        try await withService(capacity: 10) { service in
            try await enroll(service, 1, samples: samples)
            var get = Voxsync_V1_GetRequest()
            get.speakerID = Self.speaker(1)
            guard case .getOk(let answer) = try await send(service, .get(get)) else { throw CacheTestError("no profile") }
            #expect(answer.source == .cache)
            #expect(answer.profile.embedding.values.map(\.bitPattern) == Self.vector(1).map(\.bitPattern), "bit for bit as enrolled")
            #expect(answer.profile.samples.map(\.values) == samples)

            let probe = Self.vector(2)
            var verify = Voxsync_V1_VerifyRequest()
            verify.speakerID = Self.speaker(1)
            verify.probe.values = probe
            guard case .verifyOk(let verdict) = try await send(service, .verify(verify)) else { throw CacheTestError("no verdict") }
            let expected = ([Self.vector(1)] + samples).map { VectorMath.cosine($0, probe) }.reduce(0, +) / 3
            #expect(abs(verdict.score - expected) < 1e-5)
        }
        // After a restart the same profile comes from the preload, still whole.
        try await withService(capacity: 10) { service in
            var get = Voxsync_V1_GetRequest()
            get.speakerID = Self.speaker(1)
            guard case .getOk(let answer) = try await send(service, .get(get)) else { throw CacheTestError("no profile") }
            #expect(answer.source == .cache)
            #expect(answer.profile.embedding.values == Self.vector(1) && answer.profile.samples.map(\.values) == samples)
        }
    }
}

struct CacheTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
