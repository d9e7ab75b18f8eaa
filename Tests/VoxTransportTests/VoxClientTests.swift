import Foundation
import NIOCore
import Testing
import VoxClient
import VoxTransport
import VoxWire

@Suite struct VoxClientTests {
    @Test func handshakeReportsTheServer() async throws {
        let server = try await startServer()
        defer { Task { await server.shutdown() } }
        let client = makeClient(server.path!)
        defer { client.close() }
        let hello = try await client.serverHello()
        #expect(hello.serverName == "voxsync-tests")
        #expect(hello.instanceID == "test-instance")
        #expect(hello.embeddingDimension == 192)
        #expect(try await client.ping(payload: Data("abc".utf8)) == Data("abc".utf8))
    }

    @Test func manyConcurrentCallersShareOnePipelinedConnection() async throws {
        let server = try await startServer()
        defer { Task { await server.shutdown() } }
        let client = makeClient(server.path!)
        defer { client.close() }
        try await withThrowingTaskGroup(of: Data.self) { group in
            for index in 0..<500 {
                group.addTask { try await client.ping(payload: Data("\(index)".utf8)) }
            }
            var seen = Set<Data>()
            for try await payload in group { seen.insert(payload) }
            #expect(seen.count == 500)
        }
        #expect(server.connectionCount == 1)
    }

    @Test func serverErrorsArriveAsTypedErrors() async throws {
        let server = try await startServer()
        defer { Task { await server.shutdown() } }
        let client = makeClient(server.path!)
        defer { client.close() }
        var get = Voxsync_V1_GetRequest()
        get.speakerID = "ghost"
        let error = await #expect(throws: VoxClientError.self) { try await client.send(.get(get)) }
        #expect(error?.code == .server(.notFound))
        #expect(error?.field == "speaker_id")
        try await client.ping()  // the connection survives an error answer
    }

    @Test func idempotentRequestInFlightSurvivesAServerRestart() async throws {
        let path = temporarySocketPath()
        let slow = TestResponder(statsDelay: .seconds(30))
        let first = try await startServer(path: path, responder: slow)
        let client = makeClient(path) { $0.requestTimeout = .seconds(30); $0.connectTimeout = .seconds(30) }
        defer { client.close() }
        try await client.ping()

        async let answer = client.send(.stats(.init()))
        try await waitFor("the stats request to reach the first server") { slow.calls.contains("stats") }
        await first.closeNow()  // the answer never comes from this one
        try await Task.sleep(for: .milliseconds(100))
        let second = try await startServer(path: path, responder: TestResponder(statsDelay: .milliseconds(10)))
        defer { Task { await second.shutdown() } }

        guard case .statsOk(let stats) = try await answer else {
            Issue.record("expected stats")
            return
        }
        #expect(stats.profiles == 7, "resent on the new connection and answered by the new server")
        try await client.ping()
    }

    @Test func clientWaitsForAServerThatIsStillStarting() async throws {
        let path = temporarySocketPath()
        let client = makeClient(path) { $0.connectTimeout = .seconds(30) }
        defer { client.close() }
        async let pong = client.ping()
        try await Task.sleep(for: .milliseconds(150))
        let server = try await startServer(path: path)
        defer { Task { await server.shutdown() } }
        _ = try await pong
    }

    @Test func writeInFlightWhenTheConnectionBreaksIsNotResent() async throws {
        let path = temporarySocketPath()
        let responder = TestResponder()
        let server = try await startServer(path: path, responder: responder)
        let client = makeClient(path)
        defer { client.close() }
        try await client.ping()
        let put = Task { try await client.send(.put(.init())) }
        try await waitFor("the put to reach the server") { responder.calls.contains("put") }
        await server.closeNow()
        let error = await #expect(throws: VoxClientError.self) { try await put.value }
        #expect(error?.code == .connectionLost)
        #expect(error?.message.contains("may or may not have been applied") == true)
        #expect(responder.calls.filter { $0 == "put" }.count == 1)
    }

    @Test func nothingListeningIsUnavailableAfterTheConnectTimeout() async throws {
        let client = makeClient(temporarySocketPath()) { $0.connectTimeout = .milliseconds(100) }
        defer { client.close() }
        let error = await #expect(throws: VoxClientError.self) { try await client.ping() }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("No such file or directory") == true)
    }

    @Test func unansweredRequestTimesOut() async throws {
        let server = try await startServer()
        defer { Task { await server.shutdown() } }
        let client = makeClient(server.path!)
        defer { client.close() }
        let error = await #expect(throws: VoxClientError.self) { try await client.send(.list(.init()), timeout: .milliseconds(100)) }
        #expect(error?.code == .timedOut)
        try await client.ping()  // a new connection replaces the one closed by the timeout
    }
}

@Suite struct EmbeddingFileTests {
    @Test func readsJSONVectorsAndListsOfVectors() throws {
        #expect(try EmbeddingFile.vectors(from: Data("[1, 2.5, -3]".utf8), dimension: 3) == [[1, 2.5, -3]])
        #expect(try EmbeddingFile.vectors(from: Data(" [[1,0],[0,1]]\n".utf8), dimension: 2) == [[1, 0], [0, 1]])
        #expect(throws: EmbeddingFile.Failure.self) { try EmbeddingFile.vectors(from: Data(#"["a"]"#.utf8), dimension: 3) }
        #expect(throws: EmbeddingFile.Failure.self) { try EmbeddingFile.vectors(from: Data("[]".utf8), dimension: 3) }
    }

    @Test func readsRawLittleEndianFloat32() throws {
        var data = Data()
        for value: Float in [1, 2, 3, 4, 5, 6] { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        #expect(try EmbeddingFile.vectors(from: data, dimension: 3) == [[1, 2, 3], [4, 5, 6]])
        // Raw floats whose first byte happens to be '[' (0x5B) are still read as floats.
        var bracket = Data([0x5B, 0, 0, 0])
        bracket.append(contentsOf: [0, 0, 0x80, 0x3F])
        #expect(try EmbeddingFile.vectors(from: bracket, dimension: 2).first?.last == 1.0)
        let error = #expect(throws: EmbeddingFile.Failure.self) { try EmbeddingFile.vectors(from: data, dimension: 4) }
        #expect(error?.description.contains("not a whole number of 4-float vectors") == true)
    }

    @Test func readsNumPyFloat32Arrays() throws {
        // What numpy.save writes for np.array([[1, 2], [3, 4]], dtype=...): version 1.0 header.
        func npy(descr: String, values: [Float]) -> Data {
            var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (2, 2), }"
            while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
            header += "\n"
            var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)])
            data.append(Data(header.utf8))
            for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            return data
        }
        #expect(try EmbeddingFile.vectors(from: npy(descr: "<f4", values: [1, 2, 3, 4]), dimension: 99) == [[1, 2], [3, 4]],
                "the .npy shape wins over the dimension")
        let float64 = npy(descr: "<f8", values: [1, 2, 3, 4, 5, 6, 7, 8])  // 8 bytes per value
        let error = #expect(throws: EmbeddingFile.Failure.self) { try EmbeddingFile.vectors(from: float64, dimension: 2) }
        #expect(error?.description.contains("little-endian float32") == true)
    }
}
