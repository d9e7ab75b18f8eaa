import Foundation
import NIOCore
import Testing
import VoxClient
import VoxTransport
import VoxWire

#if canImport(Glibc)
import Glibc
#endif

@Suite struct UnixSocketServerTests {
    @Test(arguments: ServerKind.allCases) func socketFileIsOwnerOnly(kind: ServerKind) async throws {
        let server = try await startServer(kind)
        defer { Task { await server.shutdown() } }
        var info = stat()
        #expect(stat(server.path!, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
    }

    @Test(arguments: ServerKind.allCases) func secondServerOnALivePathIsRefused(kind: ServerKind) async throws {
        let server = try await startServer(kind)
        defer { Task { await server.shutdown() } }
        let error = await #expect(throws: TransportError.self) { try await startServer(kind, path: server.path!) }
        #expect(error?.code == .addressInUse)
        let client = makeClient(server.path!)
        defer { client.close() }
        try await client.ping()
    }

    @Test(arguments: ServerKind.allCases) func staleSocketFileIsReplaced(kind: ServerKind) async throws {
        let path = temporarySocketPath()
        leaveStaleSocketFile(at: path)  // bound, never listened, never removed: as after a crash
        #expect(FileManager.default.fileExists(atPath: path))
        let second = try await startServer(kind, path: path)
        defer { Task { await second.shutdown() } }
        let client = makeClient(path)
        defer { client.close() }
        try await client.ping()
    }

    @Test(arguments: ServerKind.allCases) func overlongSocketPathIsExplained(kind: ServerKind) async {
        let path = "/tmp/" + String(repeating: "d", count: 120) + "/s.sock"
        let error = await #expect(throws: TransportError.self) { try await startServer(kind, path: path) }
        #expect(error?.code == .invalidSocketPath)
        #expect(error?.message.contains("at most 107") == true)
    }

    /// The configuration's busy-poll window reaches the epoll server's loops: with it they poll
    /// after answering, without it they never do.
    @Test func theEpollServersLoopsPollOnlyWhenConfiguredTo() async throws {
        for window in [Duration.zero, .milliseconds(50)] {
            let server = try await startServer(.epoll) { $0.busyPoll = window } as! EpollSocketServer
            let client = makeClient(server.path!)
            for _ in 0..<5 { try await client.ping() }
            client.close()
            let polls = server.busyPolls
            await server.shutdown()
            if window == .zero {
                #expect(polls == 0, "no window, no polling")
            } else {
                #expect(polls > 0, "a \(window) window: the loops poll after answering")
            }
        }
    }

    @Test(arguments: ServerKind.allCases) func pipelinedAnswersComeBackInRequestOrder(kind: ServerKind) async throws {
        let server = try await startServer(kind, responder: TestResponder(statsDelay: .milliseconds(50)))
        defer { Task { await server.shutdown() } }
        let raw = try RawSocket(path: server.path!)
        var get = Voxsync_V1_GetRequest()
        get.speakerID = "nobody"
        // One write carrying a hello, a slow request, a fast one and a ping.
        raw.send(helloFrame(id: 1) + frame(Envelope(requestID: 2, .stats(.init())))
                 + frame(Envelope(requestID: 3, .get(get))) + frame(Envelope(requestID: 4, .ping(Ping()))))
        let answers = await raw.read(count: 4)
        #expect(answers.map(\.requestID) == [1, 2, 3, 4])
        #expect(answers[1].statsOk.profiles == 7)
        #expect(answers[2].error.code == .notFound)
        #expect(answers[2].error.field == "speaker_id")
        #expect(answers[3].pong == Pong())
    }

    @Test(arguments: ServerKind.allCases) func requestsBeyondTheInFlightLimitWaitInTheSocket(kind: ServerKind) async throws {
        let responder = TestResponder()
        let server = try await startServer(kind, configure: { $0.maxInFlightPerConnection = 2 }, responder: responder)
        defer { Task { await server.shutdown() } }
        let raw = try RawSocket(path: server.path!)
        var bytes = helloFrame()
        for id in 2...11 { bytes += frame(Envelope(requestID: UInt64(id), .put(.init()))) }
        raw.send(bytes)
        #expect(await raw.read(count: 1).first?.helloOk.protocolVersion == 1)
        try await waitFor("the first two puts") { responder.calls.count >= 2 }
        try await Task.sleep(for: .milliseconds(200))  // room for a third to arrive, were the limit not kept
        #expect(responder.calls.count == 2, "only maxInFlight requests reach the service while none is answered")
        responder.releasePuts()
        let answers = await raw.read(count: 10)
        #expect(answers.map(\.requestID) == Array(2...11).map(UInt64.init))
        #expect(responder.calls.count == 10)
    }

    @Test(arguments: ServerKind.allCases) func aBurstFollowedByHalfCloseIsAnsweredInFull(kind: ServerKind) async throws {
        let server = try await startServer(kind)
        defer { Task { await server.shutdown() } }
        let raw = try RawSocket(path: server.path!)
        var bytes = helloFrame()
        for id in 2...21 { bytes += frame(Envelope(requestID: UInt64(id), .ping(Ping()))) }
        raw.send(bytes)
        raw.shutdownWrite()  // EOF right behind twenty whole frames: not a truncation
        let (envelopes, closed) = await raw.readUntilClosed()
        #expect(envelopes.map(\.requestID) == Array(1...21).map(UInt64.init))
        #expect(envelopes.dropFirst().allSatisfy { $0.message == .pong(Pong()) })
        #expect(closed)
    }

    @Test(arguments: ServerKind.allCases) func aClientThatNeverReadsItsAnswersIsNotReadEither(kind: ServerKind) async throws {
        let server = try await startServer(kind)
        defer { Task { await server.shutdown() } }
        let raw = try RawSocket(path: server.path!)
        raw.send(helloFrame())
        #expect(await raw.read(count: 1).count == 1)
        // Pings with 64 KiB payloads, answered by 64 KiB pongs that this client never reads.
        let sent = try await sendLargePingsUntilBlocked(raw, budget: 256 << 20, stalledRounds: 50)
        // The server stops reading once its answers back up, so the client's writes block
        // after the socket buffers and one high-water mark of answers, not after 256 MiB.
        #expect(sent < 32 << 20, "the client could write \(sent) bytes into a server that was not being read")
    }

    /// Its answers back up, the idle timeout's error frame waits behind them, and a whole idle
    /// period later the connection is closed all the same, so a peer that never reads cannot
    /// hold a connection slot. (Epoll only: a SwiftNIO channel waits for its last write.)
    @Test func aPeerThatNeverReadsIsClosedAfterItsIdleTimeout() async throws {
        let server = try await startServer(.epoll, configure: { $0.idleTimeout = .milliseconds(500) })
        defer { Task { await server.shutdown() } }
        let raw = try RawSocket(path: server.path!)
        raw.send(helloFrame())
        #expect(await raw.read(count: 1).count == 1)
        _ = try await sendLargePingsUntilBlocked(raw, budget: .max, stalledRounds: 20)
        // Without the close of a connection whose last answers wait for a whole idle period,
        // it stays open for good (checked by disabling that close).
        try await waitFor("the connection to be closed") { server.connectionCount == 0 }
    }

    @Test(arguments: ServerKind.allCases) func gracefulShutdownFinishesRequestsInFlight(kind: ServerKind) async throws {
        let server = try await startServer(kind, responder: TestResponder(statsDelay: .milliseconds(200)))
        let raw = try RawSocket(path: server.path!)
        raw.send(helloFrame() + frame(Envelope(requestID: 2, .stats(.init()))))
        #expect(await raw.read(count: 1).count == 1)
        async let stopped: Void = server.shutdown()
        let (envelopes, closed) = await raw.readUntilClosed()
        await stopped
        #expect(envelopes.first?.statsOk.profiles == 7, "the request in flight is answered before the close")
        #expect(closed)
        #expect(!FileManager.default.fileExists(atPath: server.path!), "the socket file is removed")
    }
}

/// Sends pings with 64 KiB incompressible payloads, never reading the pongs, until `budget`
/// bytes are sent or the socket has refused more for `stalledRounds` tries 10 ms apart.
/// Returns the bytes sent.
func sendLargePingsUntilBlocked(_ raw: RawSocket, budget: Int, stalledRounds limit: Int) async throws -> Int {
    var ping = Ping()
    ping.payload = Data((0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 7919) })
    let oneFrame = frame(Envelope(requestID: 2, .ping(ping)))
    var sent = 0
    var pending: ArraySlice<UInt8> = []
    var stalledRounds = 0
    while sent < budget && stalledRounds < limit {
        if pending.isEmpty { pending = oneFrame[...] }
        let written = raw.sendWithoutBlocking(Array(pending))
        if written == 0 {
            stalledRounds += 1
            try await Task.sleep(for: .milliseconds(10))
        } else {
            stalledRounds = 0
            sent += written
            pending = pending.dropFirst(written)
        }
    }
    return sent
}

/// Binds a socket at `path` and closes it without removing the file.
func leaveStaleSocketFile(at path: String) {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    _ = SocketPath.withAddress(of: path) { bind(fd, $0, $1) }
    close(fd)
}
