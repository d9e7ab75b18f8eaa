import Logging
import NIOCore
import VoxCore
import VoxWire

/// Fire-and-forget messages from one worker to another's socket (`<run>/<role>.sock`): the
/// cache's outbox nudges to sync, sync's invalidations to the cache, access events to prefetch.
///
/// Never blocks and never grows without bound: messages wait in a queue of `capacity` while the
/// peer is down or slow, and what does not fit is dropped and counted. The connection is made
/// lazily and remade with exponential backoff. When a message may have been lost (dropped, or
/// in flight on a connection that broke), `afterLoss` — if given — is sent first on the next
/// connection: for invalidations that is "reload everything", so a lost message can cost time
/// but never leave the peer stale.
///
/// `@unchecked Sendable`: the mutable state is touched only on `loop`; `send` hops there.
public final class PeerSender: @unchecked Sendable {
    public let path: String
    public let loop: EventLoop
    private let clientName: String
    private let capacity: Int
    private let afterLoss: Envelope.OneOf_Message?
    private let logger: Logger
    private let backoff = ExponentialBackoff(initial: .milliseconds(50), maximum: .seconds(2))
    private let maxInFlight = 16

    private var queue = CircularBuffer<Queued>()
    private var coalescing = CoalescedSend<Envelope.OneOf_Message>()

    private struct Queued {
        var message: Envelope.OneOf_Message
        var coalesced = false
    }
    private var connection: ClientConnection?
    private var connecting = false
    private var retryScheduled = false
    private var failedConnects = 0
    private var lostSomething = false
    private var inFlight = 0
    private var closed = false
    /// Messages the peer acknowledged.
    public private(set) var delivered: UInt64 = 0
    /// Messages dropped (queue full) or lost with a broken connection.
    public private(set) var dropped: UInt64 = 0

    public init(path: String, clientName: String, capacity: Int = 1024, afterLoss: Envelope.OneOf_Message? = nil, loop: EventLoop, logger: Logger) {
        precondition(capacity >= 1, "a peer sender needs room for one message")
        self.path = path
        self.clientName = clientName
        self.capacity = capacity
        self.afterLoss = afterLoss
        self.loop = loop
        self.logger = logger
    }

    /// How a message joins the queue.
    public enum QueuePolicy: Sendable {
        /// At the end; dropped (and counted) when the queue is full.
        case append
        /// Not while another message waits to go out, and while one of these is on its way
        /// at most one more, sent when the peer has answered: see `CoalescedSend`.
        case coalesce
        /// In place of whatever waits: a cumulative snapshot makes the older ones useless.
        case replace
    }

    /// Queues `message` for the peer.
    public func send(_ message: Envelope.OneOf_Message, policy: QueuePolicy = .append) {
        if loop.inEventLoop {
            enqueue(message, policy: policy)
        } else {
            loop.execute { self.enqueue(message, policy: policy) }
        }
    }

    /// Stops sending; what is queued is dropped.
    public func close() {
        loop.execute {
            self.closed = true
            self.queue.removeAll()
            self.coalescing.reset()
            self.connection?.close()
            self.connection = nil
        }
    }

    /// `(delivered, dropped)`, read on the loop.
    public func counters() -> EventLoopFuture<(delivered: UInt64, dropped: UInt64)> {
        loop.submit { (self.delivered, self.dropped) }
    }

    private func enqueue(_ message: Envelope.OneOf_Message, policy: QueuePolicy) {
        guard !closed else { return }
        switch policy {
        case .append: break
        case .coalesce: guard coalescing.asked(message, queued: !queue.isEmpty) else { return }
        case .replace: queue.removeAll(keepingCapacity: true)
        }
        guard queue.count < capacity else {
            dropped += 1
            lostSomething = true
            return
        }
        queue.append(Queued(message: message, coalesced: policy == .coalesce))
        pump()
    }

    private func pump() {
        guard let connection, connection.isActive else {
            connection = nil
            connect()
            return
        }
        // Something was lost while this connection stayed up (a full queue, a refused message):
        // make it good now, not at some later reconnect.
        if lostSomething, let afterLoss {
            lostSomething = false
            queue.prepend(Queued(message: afterLoss))
        }
        while inFlight < maxInFlight, let item = queue.popFirst() {
            let message = item.message
            inFlight += 1
            if item.coalesced { coalescing.sent() }
            connection.send(message, timeout: .seconds(5)).hop(to: loop).whenComplete { result in
                self.inFlight -= 1
                switch result {
                case .success(let answer) where answer.message == .ack(Ack()):
                    self.delivered += 1
                case .success(let answer):
                    // The peer refused it (an older build, a failure on its side): counted, not
                    // retried, and made good by `afterLoss` where there is one.
                    self.dropped += 1
                    // (Not for a refused `afterLoss` itself: resending it at once would only
                    // hammer a peer that cannot take it; the next loss sends it again.)
                    if message != self.afterLoss { self.lostSomething = true }
                    self.logger.warning("peer refused a message", metadata: ["peer": "\(self.path)", "answer": "\(answer.message?.name ?? "nothing")"])
                case .failure:
                    self.dropped += 1
                    self.lostSomething = true
                    if self.connection === connection { self.connection = nil }
                }
                if item.coalesced, let owed = self.coalescing.answered() {
                    self.enqueue(owed, policy: .coalesce)
                }
                if !self.queue.isEmpty || self.lostSomething { self.pump() }
            }
        }
    }

    private func connect() {
        guard !connecting, !retryScheduled, !closed, !queue.isEmpty || lostSomething else { return }
        connecting = true
        let promise = loop.makePromise(of: ClientConnection.self)
        let (path, name, loop) = (path, clientName, loop)
        promise.completeWithTask {
            try await ClientConnection.connect(path: path, clientName: name, handshakeTimeout: .seconds(2), group: loop)
        }
        promise.futureResult.whenComplete { result in
            self.connecting = false
            switch result {
            case .success(let connection):
                guard !self.closed else { return connection.close() }
                self.connection = connection
                self.failedConnects = 0
                if self.lostSomething, let afterLoss = self.afterLoss {
                    self.queue.prepend(Queued(message: afterLoss))
                }
                self.lostSomething = false
                self.pump()
            case .failure(let error):
                if self.failedConnects == 0 {
                    self.logger.debug("peer not reachable; queueing", metadata: ["peer": "\(path)", "error": "\(error)"])
                }
                let delay = self.backoff.delay(attempt: self.failedConnects, random: Double.random(in: 0..<1))
                self.failedConnects += 1
                self.retryScheduled = true
                self.loop.scheduleTask(in: .nanoseconds(Int64(delay.seconds * 1e9))) {
                    self.retryScheduled = false
                    self.connect()
                }
            }
        }
    }
}
