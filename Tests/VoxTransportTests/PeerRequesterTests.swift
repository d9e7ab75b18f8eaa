import Foundation
import NIOPosix
import Testing
import VoxTransport
import VoxWire

/// A request whose answer the sender needs: failing at once while the peer is down, answered
/// once it is up, and reconnecting after the peer restarted.
@Suite struct PeerRequesterTests {
    @Test func failsAtOnceWhileThePeerIsDownAndReconnectsWhenItIsBack() async throws {
        let path = temporarySocketPath()
        let requester = PeerRequester(path: path, clientName: "test", connectTimeout: .seconds(10), group: MultiThreadedEventLoopGroup.singleton)
        let down = await #expect(throws: TransportError.self) {
            try await requester.request(.prefetchList(.init()), timeout: .seconds(1))
        }
        #expect(down?.code == .cannotConnect)

        let recorder = PeerSenderTests.Recorder()
        var server = try await PeerSenderTests.serve(path, recorder)
        #expect(try await requester.request(.prefetchList(.init()), timeout: .seconds(10)) == .ack(Ack()))

        // The peer restarts: the first request after it may fail on the dead connection; the
        // one after reaches the new peer.
        await server.shutdown()
        server = try await PeerSenderTests.serve(path, recorder)
        if (try? await requester.request(.prefetchList(.init()), timeout: .seconds(1))) == nil {
            #expect(try await requester.request(.prefetchList(.init()), timeout: .seconds(10)) == .ack(Ack()))
        }
        #expect(recorder.messages.count >= 2)
        await requester.close()
        await server.shutdown()
    }
}
