import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import VoxTransport
import VoxWire

/// Worker-to-worker pushes over a real socket: queued while the peer is down, delivered when
/// it comes up, bounded, and followed by the `afterLoss` message when something was dropped.
@Suite struct PeerSenderTests {
    /// Records what arrives and acknowledges it, as a worker's internal socket does.
    final class Recorder: ServerResponder {
        private let received = NIOLockedValueBox<[Envelope.OneOf_Message]>([])
        var messages: [Envelope.OneOf_Message] { received.withLockedValue { $0 } }

        func respond(to request: Envelope.OneOf_Message, connection: ConnectionInfo) -> ServerResponse {
            received.withLockedValue { $0.append(request) }
            return .now(.ack(Ack()))
        }
    }

    static func invalidate(_ ids: String...) -> Envelope.OneOf_Message {
        var message = Voxsync_V1_Invalidate()
        message.speakerIds = ids
        return .invalidate(message)
    }

    static var all: Envelope.OneOf_Message {
        var message = Voxsync_V1_Invalidate()
        message.all = true
        return .invalidate(message)
    }

    static func serve(_ path: String, _ recorder: some ServerResponder) async throws -> UnixSocketServer {
        var configuration = ServerConfiguration()
        configuration.acceptsInternalMessages = true
        return try await UnixSocketServer.bind(path: path, identity: testIdentity, configuration: configuration, responder: recorder)
    }

    static func waitForDelivered(_ count: UInt64, _ sender: PeerSender) async throws {
        for _ in 0..<500 {
            if try await sender.counters().get().delivered >= count { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("timed out waiting for \(count) delivered messages")
    }

    /// Records what arrives and holds every answer until `release()`: a slow peer.
    final class HoldingRecorder: ServerResponder {
        private struct State {
            var messages: [Envelope.OneOf_Message] = []
            /// For each message, how many answers had been released when it arrived.
            var releasedBefore: [Int] = []
            var released = 0
            var held: [EventLoopPromise<Envelope.OneOf_Message>] = []
        }
        private let state = NIOLockedValueBox(State())
        var messages: [Envelope.OneOf_Message] { state.withLockedValue { $0.messages } }
        var releasedBefore: [Int] { state.withLockedValue { $0.releasedBefore } }

        func respond(to request: Envelope.OneOf_Message, connection: ConnectionInfo) -> ServerResponse {
            let promise = connection.eventLoop.makePromise(of: Envelope.OneOf_Message.self)
            state.withLockedValue {
                $0.messages.append(request)
                $0.releasedBefore.append($0.released)
                $0.held.append(promise)
            }
            return .later(promise.futureResult)
        }

        func release() {
            let held = state.withLockedValue { state in
                defer {
                    state.released += state.held.count
                    state.held = []
                }
                return state.held
            }
            for promise in held { promise.succeed(.ack(Ack())) }
        }
    }

    @Test func whileANudgeIsOnItsWayFurtherNudgesBecomeOneSentAfterItsAnswer() async throws {
        let path = temporarySocketPath()
        let recorder = HoldingRecorder()
        let server = try await Self.serve(path, recorder)
        let sender = PeerSender(path: path, clientName: "test", loop: MultiThreadedEventLoopGroup.singleton.next(), logger: Logger(label: "test"))
        defer { sender.close() }
        sender.send(.outboxNudge(.init()), policy: .coalesce)
        try await waitFor("the first nudge") { recorder.messages.count == 1 }
        // The peer has not answered: these may announce something it has not seen yet.
        for _ in 0..<100 { sender.send(.outboxNudge(.init()), policy: .coalesce) }
        // `send` hops to the sender's loop; `counters` runs there after all of them.
        _ = try await sender.counters().get()
        try await Task.sleep(for: .milliseconds(50))
        #expect(recorder.messages.count == 1, "nothing more goes while the first is unanswered")
        recorder.release()
        try await waitFor("the owed nudge") { recorder.messages.count == 2 }
        recorder.release()
        try await Self.waitForDelivered(2, sender)
        #expect(try await sender.counters().get() == (delivered: 2, dropped: 0))
        #expect(recorder.messages.count == 2, "one owed nudge stands for the hundred")

        // Nothing owed any more: the next nudge goes at once.
        sender.send(.outboxNudge(.init()), policy: .coalesce)
        try await waitFor("a later nudge") { recorder.messages.count == 3 }
        recorder.release()
        try await Self.waitForDelivered(3, sender)
        #expect(try await sender.counters().get() == (delivered: 3, dropped: 0))
        #expect(recorder.releasedBefore == [0, 1, 2], "each nudge arrived only after the one before it was answered")
        await server.shutdown()
    }

    @Test func messagesSentWhileThePeerIsDownArriveWhenItComesUp() async throws {
        let path = temporarySocketPath()
        let sender = PeerSender(path: path, clientName: "test", capacity: 8, afterLoss: Self.all,
                                loop: MultiThreadedEventLoopGroup.singleton.next(), logger: Logger(label: "test"))
        defer { sender.close() }
        sender.send(Self.invalidate("a"))
        sender.send(Self.invalidate("b"))
        try await Task.sleep(for: .milliseconds(100))  // a few failed connection attempts
        let recorder = Recorder()
        let server = try await Self.serve(path, recorder)
        try await waitFor("both messages") { recorder.messages.count == 2 }
        #expect(recorder.messages == [Self.invalidate("a"), Self.invalidate("b")], "in order, and no afterLoss: nothing was lost")
        var counters = try await sender.counters().get()
        for _ in 0..<200 where counters.delivered < 2 {
            // The acknowledgements travel back after the recorder saw the messages.
            try await Task.sleep(for: .milliseconds(10))
            counters = try await sender.counters().get()
        }
        #expect(counters.delivered == 2 && counters.dropped == 0)
        await server.shutdown()
    }

    @Test func whatDoesNotFitIsDroppedAndCountedAndAfterLossGoesFirst() async throws {
        let path = temporarySocketPath()
        let sender = PeerSender(path: path, clientName: "test", capacity: 2, afterLoss: Self.all,
                                loop: MultiThreadedEventLoopGroup.singleton.next(), logger: Logger(label: "test"))
        defer { sender.close() }
        for id in ["a", "b", "c", "d"] { sender.send(Self.invalidate(id)) }
        let dropped = try await sender.counters().get().dropped
        #expect(dropped == 2, "the queue holds 2; the sender never blocks and never grows")
        let recorder = Recorder()
        let server = try await Self.serve(path, recorder)
        try await waitFor("the messages") { recorder.messages.count == 3 }
        #expect(recorder.messages == [Self.all, Self.invalidate("a"), Self.invalidate("b")],
                "the peer first hears 'reload everything', so the dropped ones cost time, not correctness")
        await server.shutdown()
    }

    @Test func coalescingKeepsOneNudgeWaiting() async throws {
        let path = temporarySocketPath()
        let sender = PeerSender(path: path, clientName: "test", capacity: 1,
                                loop: MultiThreadedEventLoopGroup.singleton.next(), logger: Logger(label: "test"))
        defer { sender.close() }
        for _ in 0..<100 { sender.send(.outboxNudge(.init()), policy: .coalesce) }
        #expect(try await sender.counters().get().dropped == 0, "coalesced nudges are not losses")
        let recorder = Recorder()
        let server = try await Self.serve(path, recorder)
        try await waitFor("the nudge") { recorder.messages.count == 1 }
        try await Task.sleep(for: .milliseconds(50))
        #expect(recorder.messages.count == 1)
        await server.shutdown()
    }
}
