import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import VoxCache
import VoxCore
import VoxMetrics
import VoxStore
import VoxTransport
import VoxWire

/// The cache worker: opens the local store and serves the client socket it inherited from the
/// supervisor at once, while it preloads the cache and the identify matrix in the background
/// (a miss meanwhile reads SQLite; identify and stats wait; see `CacheService.init`). It
/// reports ready to the supervisor once the preload is in (DESIGN §7), so `voxsync status`
/// shows it `starting` until then — while it already answers.
final class CacheRoleService: WorkerRoleService {
    private let configuration: VoxsyncConfiguration
    private let listenDescriptor: CInt
    private let instanceID: String
    private let logger: Logger
    private let server = NIOLockedValueBoxHolder<any SocketServing>()
    private let service = NIOLockedValueBoxHolder<CacheService>()
    private let internalServer = NIOLockedValueBoxHolder<UnixSocketServer>()
    private let peers = NIOLockedValueBoxHolder<Peers>()

    private struct Peers: Sendable {
        var nudges: PeerSender
        var accessEvents: AccessEventBatcher
    }

    init(configuration: VoxsyncConfiguration, listenDescriptor: CInt, instanceID: String, logger: Logger) {
        self.configuration = configuration
        self.listenDescriptor = listenDescriptor
        self.instanceID = instanceID
        self.logger = logger
    }

    func prepare() async throws -> String {
        var serverConfiguration = ServerConfiguration()
        serverConfiguration.wire.maxFrameBytes = configuration.maxFrameBytes
        serverConfiguration.maxConnections = configuration.maxConnections
        serverConfiguration.maxInFlightPerConnection = configuration.maxInFlightPerConnection
        serverConfiguration.idleTimeout = configuration.idleTimeout
        serverConfiguration.busyPoll = configuration.clientBusyPoll
        serverConfiguration.allowedUIDs.formUnion(configuration.allowedUIDs)
        // Finish in-flight requests well inside the supervisor's SIGKILL deadline.
        serverConfiguration.shutdownGracePeriod = configuration.shutdownTimeout * 0.8
        let identity = ServerIdentity(
            serverName: "voxsyncd 0.1.0 (cache)", instanceID: instanceID,
            embeddingDimension: UInt32(configuration.embeddingDimension), embeddingModel: configuration.embeddingModel)
        // Client connections are spread over event_loop_threads loops; each answers its own
        // (see CacheService). With epoll those loops are the client server's own, and the NIO
        // group keeps one loop for the service's timers, the worker socket and the peers.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.clientIO == "nio" ? configuration.eventLoopThreads : 1)
        let store = StoreConfiguration(configuration, origin: instanceID)
        // Serve at once after a restart, whatever the number of profiles: the preload runs
        // beside the serving (see CacheService.init).
        let service = try CacheService(
            configuration: store, cacheCapacity: configuration.cacheCapacity, preloadInBackground: true, loop: group.next())
        self.service.value = service
        // Worker-to-worker messages: never block a client's answer, bounded, dropped with a
        // count when the peer is down.
        let nudges = PeerSender(
            path: configuration.workerSocketPath(.sync), clientName: "voxsyncd cache", capacity: 1,
            afterLoss: .outboxNudge(.init()), loop: service.loop, logger: logger)
        let accessEvents = AccessEventBatcher(
            sender: PeerSender(
                path: configuration.workerSocketPath(.prefetch), clientName: "voxsyncd cache", capacity: 64,
                loop: service.loop, logger: logger))
        // At most one nudge per sync_nudge_interval_ms during a burst of commits (`NudgePacing`).
        let pacer = NudgePacer(interval: configuration.syncNudgeInterval, loop: service.loop) {
            nudges.send(.outboxNudge(.init()), policy: .coalesce)
        }
        service.onCommitted = { pacer.committed() }
        service.onAccess = { speaker, hit in accessEvents.record(speaker, hit: hit) }
        self.peers.value = Peers(nudges: nudges, accessEvents: accessEvents)
        self.internalServer.value = try await WorkerSocket.bind(
            .cache, configuration: configuration, instanceID: instanceID,
            responder: InternalResponder(service: service), group: group, logger: logger)
        // The client socket: on event loops of its own (epoll, no SwiftNIO channel per
        // connection; README, Process model), or on the NIO group's with client_io=nio.
        if configuration.clientIO == "nio" {
            self.server.value = try await UnixSocketServer.adopt(
                listeningDescriptor: listenDescriptor, identity: identity, configuration: serverConfiguration,
                responder: service, group: group, logger: logger)
        } else {
            self.server.value = try await EpollSocketServer.adopt(
                listeningDescriptor: listenDescriptor, identity: identity, configuration: serverConfiguration,
                responder: service, loops: configuration.eventLoopThreads, logger: logger)
        }
        // Serving; ready once the preload is in. A preload that fails ends the worker, as a
        // failing open does, and the supervisor restarts it.
        try await service.preloadFinished.get()
        let summary = try await service.loop.submit { service.summary }.get()
        return "serving \(configuration.clientSocketPath); \(summary)"
    }

    func run() async throws {
        try? await gracefulShutdown()
        let server = self.server.value
        if let epoll = server as? EpollSocketServer {
            // The client loops keep running until the process exits: a write still in its
            // group commit when the grace period ended is completed on its connection's loop,
            // from the store's thread, after the service has shut down.
            await epoll.shutdownConnections()
        } else {
            await server?.shutdown()
        }
        await internalServer.value?.shutdown()
        peers.value?.nudges.close()
        peers.value?.accessEvents.close()
        try? await service.value?.shutdown()
    }
}

/// The cache worker's side of `<run>/cache.sock`.
private struct InternalResponder: ServerResponder {
    let service: CacheService

    func respond(to request: Envelope.OneOf_Message, connection: ConnectionInfo) -> ServerResponse {
        service.respondInternal(to: request)
    }
}

/// Batches access events for the prefetch worker: at most one per speaker per second
/// (`AccessEventThrottle`), sent every 100 ms or at 256 events, whichever comes first (so at
/// most 256 wait; beyond that the `PeerSender`'s queue bounds and counts what it drops).
///
/// Called from every event loop of the cache worker (each answers its own connections), so
/// its state is behind a lock of its own; it never calls back into the cache service, whose
/// lock is held while it records.
final class AccessEventBatcher: Sendable {
    private let sender: PeerSender
    private let state = NIOLockedValueBox(State())
    private static let batch = 256

    private struct State {
        var throttle = AccessEventThrottle()
        var pending: [Voxsync_V1_AccessEvent] = []
        var flushScheduled = false
    }

    init(sender: PeerSender) {
        self.sender = sender
    }

    func record(_ speakerID: String, hit: Bool) {
        let now = WallClock.nowMilliseconds()
        enum Next { case nothing, scheduleFlush, send([Voxsync_V1_AccessEvent]) }
        let next: Next = state.withLockedValue { state in
            guard state.throttle.shouldSend(speakerID, at: now) else { return .nothing }
            var event = Voxsync_V1_AccessEvent()
            event.speakerID = speakerID
            event.atUnixMs = now
            event.hit = hit
            state.pending.append(event)
            if state.pending.count >= Self.batch {
                defer { state.pending.removeAll(keepingCapacity: true) }
                return .send(state.pending)
            }
            guard !state.flushScheduled else { return .nothing }
            state.flushScheduled = true
            return .scheduleFlush
        }
        switch next {
        case .nothing: break
        case .scheduleFlush: sender.loop.scheduleTask(in: .milliseconds(100)) { self.flush() }
        case .send(let events):
            // Never a socket write here: the cache service's lock is held.
            sender.loop.execute { self.send(events) }
        }
    }

    private func flush() {
        let events: [Voxsync_V1_AccessEvent] = state.withLockedValue { state in
            state.flushScheduled = false
            defer { state.pending.removeAll(keepingCapacity: true) }
            return state.pending
        }
        if !events.isEmpty { send(events) }
    }

    private func send(_ events: [Voxsync_V1_AccessEvent]) {
        var message = Voxsync_V1_AccessEvents()
        message.events = events
        sender.send(.accessEvents(message))
    }

    func close() {
        sender.close()
    }
}

/// A lock-protected optional value, set once in `prepare` and read in `run`.
final class NIOLockedValueBoxHolder<Value: Sendable>: Sendable {
    private let box = NIOLockedValueBox<Value?>(nil)
    var value: Value? {
        get { box.withLockedValue { $0 } }
        set { box.withLockedValue { $0 = newValue } }
    }
}
