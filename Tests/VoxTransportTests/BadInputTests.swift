import Foundation
import NIOCore
import Testing
import VoxClient
import VoxTransport
import VoxTestSupport
import VoxWire

/// Every kind of bad input, each over a real socket: the offender gets an `Error` frame with the
/// right code and is disconnected; a connection that was already open keeps working, and new
/// clients are still served.
@Suite struct BadInputTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var greetFirst: Bool
        var bytes: [UInt8]
        var closeWriteSide = false
        var expectedCode: ErrorCode
        var messageContains: String
        var testDescription: String { name }
    }

    static let maxFrame = 1 << 20

    static let cases: [Case] = {
        var ping = Ping()
        ping.payload = Data(repeating: 0x61, count: 4000)
        let pingBody = try! Envelope(requestID: 2, .ping(ping)).serializedBytes() as [UInt8]
        var overLimit: [UInt8] = [0, 0, 0, 0]
        withUnsafeBytes(of: UInt32(maxFrame + 1).bigEndian) { overLimit = Array($0) }
        let hello = helloFrame()
        return [
            Case(name: "length over the limit", greetFirst: true, bytes: overLimit + [0],
                 expectedCode: .protocol, messageContains: "over the limit"),
            Case(name: "reserved flag bits", greetFirst: true, bytes: rawFrameBytes(flags: 0x40, body: [0x08, 0x02]),
                 expectedCode: .protocol, messageContains: "reserved bits"),
            Case(name: "zstd frame without declared size", greetFirst: true,
                 bytes: rawFrameBytes(flags: 1, body: zstdFrame(pingBody, declareSize: false)),
                 expectedCode: .protocol, messageContains: "does not declare its content size"),
            Case(name: "zstd bomb declaring more than the limit", greetFirst: true,
                 bytes: rawFrameBytes(flags: 1, body: zstdFrame([UInt8](repeating: 0, count: 32 << 20), declareSize: true)),
                 expectedCode: .protocol, messageContains: "declares 33554432 bytes"),
            Case(name: "truncated frame then close", greetFirst: true, bytes: Array(hello.prefix(9)), closeWriteSide: true,
                 expectedCode: .protocol, messageContains: "bytes into a frame"),
            Case(name: "bytes that are not an Envelope", greetFirst: true, bytes: rawFrameBytes(flags: 0, body: [0xFF, 0xFF, 0xFF]),
                 expectedCode: .protocol, messageContains: "not a voxsync.v1.Envelope"),
            Case(name: "first message is not hello", greetFirst: false, bytes: frame(Envelope(requestID: 1, .ping(Ping()))),
                 expectedCode: .protocol, messageContains: "first message must be hello"),
        ]
    }()

    @Test(arguments: cases, ServerKind.allCases)
    func badInputGetsAnErrorAndOnlyThatConnectionCloses(badCase: Case, kind: ServerKind) async throws {
        let server = try await startServer(kind, configure: { $0.wire.maxFrameBytes = Self.maxFrame })
        defer { Task { await server.shutdown() } }
        let path = server.path!

        // A well-behaved connection, open before the bad one arrives.
        let bystander = makeClient(path)
        defer { bystander.close() }
        try await bystander.ping()

        let raw = try RawSocket(path: path)
        if badCase.greetFirst {
            raw.send(helloFrame())
            let greeting = await raw.read(count: 1)
            #expect(greeting.first?.helloOk.protocolVersion == WireProtocol.version)
        }
        raw.send(badCase.bytes)
        if badCase.closeWriteSide { raw.shutdownWrite() }
        let (envelopes, closed) = await raw.readUntilClosed()

        let error = try #require(envelopes.last?.error, "an Error frame, got \(envelopes)")
        #expect(envelopes.last?.requestID == 0)
        #expect(error.code == badCase.expectedCode)
        #expect(error.message.contains(badCase.messageContains), "message: \(error.message)")
        #expect(closed, "the server closes the offending connection")

        // The server goes on: the old connection still works and new ones are served.
        try await bystander.ping()
        let newcomer = makeClient(path)
        defer { newcomer.close() }
        try await newcomer.ping()
    }

    @Test(arguments: ServerKind.allCases) func peerWithAUidNotAllowedIsRefused(kind: ServerKind) async throws {
        let server = try await startServer(kind, configure: { $0.allowedUIDs = [4242] })
        defer { Task { await server.shutdown() } }
        let raw = try RawSocket(path: server.path!)
        raw.send(helloFrame())
        let (envelopes, closed) = await raw.readUntilClosed()
        let error = try #require(envelopes.first?.error)
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains("uid \(getuid()) may not use this voxsync socket"))
        #expect(closed)
        #expect(envelopes.count == 1, "no HelloOk for a refused peer")
    }

    @Test(arguments: ServerKind.allCases) func connectionsOverTheLimitAreTurnedAway(kind: ServerKind) async throws {
        let server = try await startServer(kind, configure: { $0.maxConnections = 2 })
        defer { Task { await server.shutdown() } }
        let first = makeClient(server.path!)
        let second = makeClient(server.path!)
        defer { first.close(); second.close() }
        try await first.ping()
        try await second.ping()

        let third = try RawSocket(path: server.path!)
        third.send(helloFrame())
        let (envelopes, closed) = await third.readUntilClosed()
        #expect(envelopes.first?.error.code == .overloaded)
        #expect(closed)
        try await first.ping()
    }

    @Test(arguments: ServerKind.allCases) func idleConnectionsAreClosedWithAReason(kind: ServerKind) async throws {
        let server = try await startServer(kind, configure: { $0.idleTimeout = .seconds(1) })
        defer { Task { await server.shutdown() } }
        let raw = try RawSocket(path: server.path!)
        raw.send(helloFrame())
        let (envelopes, closed) = await raw.readUntilClosed()
        #expect(envelopes.first?.helloOk.protocolVersion == 1)
        #expect(envelopes.last?.error.code == .unavailable)
        #expect(envelopes.last?.error.message.contains("idle") == true)
        #expect(closed)
    }
}
