import Foundation
import Testing
import VoxCore
import VoxWire
@testable import VoxCache
@testable import VoxTransport

/// What the cache does with the prefetch worker's lists, and how it accounts for them: loaded
/// only when not cached, used at the first read, wasted when evicted unread.
extension CacheServiceTests {
    func prefetch(_ service: CacheService, _ speakers: [String]) async throws -> Voxsync_V1_PrefetchListResponse {
        var list = Voxsync_V1_PrefetchList()
        list.speakerIds = speakers
        let answer: Envelope.OneOf_Message
        switch service.respondInternal(to: .prefetchList(list)) {
        case .now(let now): answer = now
        case .later(let future): answer = try await future.get()
        }
        guard case .prefetchListOk(let response) = answer else { throw CacheTestError("no prefetch_list_ok: \(answer)") }
        return response
    }

    func stats(_ service: CacheService) async throws -> Voxsync_V1_StatsResponse {
        guard case .statsOk(let stats) = try await send(service, .stats(.init())) else { throw CacheTestError("no stats") }
        return stats
    }

    @Test func prefetchedEntriesCountAsUsedWhenReadAndAsWastedWhenEvictedUnread() async throws {
        try await withService(capacity: 4) { service in
            for number in 0..<12 { try await enroll(service, number) }
            let before = try await stats(service)
            #expect(before.extra["prefetch_loaded"] == 0 && before.extra["prefetch_precision"] == nil, "nothing measured yet")

            // At most a cache's worth (4) of a list is looked at: speaker-11 is beyond it.
            let first = try await prefetch(service, [Self.speaker(0), "nobody", "bad\u{7}", Self.speaker(1), Self.speaker(11)])
            #expect(first.loaded == 2 && first.alreadyCached == 0)
            #expect(first.notFound == 2, "never enrolled, and an id that breaks the rules")
            #expect(first.loadedTotal == 2 && first.usedTotal == 0 && first.wastedTotal == 0)
            let again = try await prefetch(service, [Self.speaker(0), Self.speaker(1), Self.speaker(0)])
            #expect(again.loaded == 0 && again.alreadyCached == 2, "cached already: not loaded or marked twice")
            #expect(again.loadedTotal == 2)

            // The first read of a prefetched entry is the hit the prefetch added; later reads are
            // ordinary hits.
            #expect(try await verify(service, 0) == .cache)
            #expect(try await verify(service, 0) == .cache)
            #expect(try await stats(service).extra["prefetch_used"] == 1)

            // Others, each read twice (so that SIEVE's hand has to go round and wear down the
            // prefetched entries' turns), push speaker-1 out before anyone read it.
            for number in 2..<12 {
                _ = try await verify(service, number)
                _ = try await verify(service, number)
            }
            #expect(try await verify(service, 1) == .sqlite, "evicted unread")
            let after = try await stats(service)
            #expect(after.extra["prefetch_loaded"] == 2)
            #expect(after.extra["prefetch_used"] == 1)
            #expect(after.extra["prefetch_wasted"] == 1)
            #expect(after.extra["prefetch_precision"] == 0.5)

            // The next list's answer carries the totals (what the prefetch worker's threshold reads).
            let second = try await prefetch(service, [])
            #expect(second.loaded == 0 && second.loadedTotal == 2 && second.usedTotal == 1 && second.wastedTotal == 1)
        }
    }

    @Test func aDeletedPrefetchedEntryIsNeitherUsedNorWasted() async throws {
        try await withService(capacity: 2) { service in
            for number in 0..<4 { try await enroll(service, number) }
            #expect(try await prefetch(service, [Self.speaker(0)]).loaded == 1)
            var delete = Voxsync_V1_DeleteRequest()
            delete.speakerID = Self.speaker(0)
            guard case .deleteOk = try await send(service, .delete(delete)) else { throw CacheTestError("no delete_ok") }
            for number in 1..<4 { _ = try await verify(service, number) }
            let stats = try await stats(service)
            #expect(stats.extra["prefetch_loaded"] == 1)
            #expect(stats.extra["prefetch_used"] == 0 && stats.extra["prefetch_wasted"] == 0)
            #expect(stats.extra["prefetch_precision"] == nil)
        }
    }
}
