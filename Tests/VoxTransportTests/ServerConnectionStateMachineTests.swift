import Foundation
import Testing
import VoxTransport
import VoxWire

@Suite struct ServerConnectionStateMachineTests {
    private func hello(id: UInt64 = 1, version: UInt32 = WireProtocol.version, name: String = "t") -> Envelope {
        var hello = Hello()
        hello.protocolVersion = version
        hello.clientName = name
        return Envelope(requestID: id, .hello(hello))
    }

    private func get(_ id: UInt64) -> Envelope {
        var get = Voxsync_V1_GetRequest()
        get.speakerID = "alice"
        return Envelope(requestID: id, .get(get))
    }

    private func greeted(maxInFlight: Int = 4) -> ServerConnectionStateMachine {
        var machine = ServerConnectionStateMachine(maxInFlight: maxInFlight)
        #expect(machine.envelopeReceived(hello()) == .sendHelloOk(requestID: 1))
        #expect(machine.inFlight == 1, "the HelloOk is owed")
        #expect(machine.responseWritten() == .none)
        return machine
    }

    @Test func helloIsAnswered() {
        _ = greeted()
    }

    @Test func firstMessageMustBeHello() {
        var machine = ServerConnectionStateMachine(maxInFlight: 4)
        let action = machine.envelopeReceived(get(1))
        guard case .sendErrorAndClose(.protocol, let message) = action else {
            Issue.record("expected a protocol error, got \(action)")
            return
        }
        #expect(message.contains("first message must be hello"))
        #expect(machine.isClosed && !machine.mayReadMore)
        #expect(machine.envelopeReceived(hello()) == .none, "nothing is served after the close")
    }

    @Test func wrongProtocolVersionIsRefused() {
        var machine = ServerConnectionStateMachine(maxInFlight: 4)
        guard case .sendErrorAndClose(.protocol, let message) = machine.envelopeReceived(hello(version: 2)) else {
            Issue.record("expected a protocol error")
            return
        }
        #expect(message.contains("version 2"))
    }

    @Test func overlongClientNameIsRefused() {
        var machine = ServerConnectionStateMachine(maxInFlight: 4)
        guard case .sendErrorAndClose = machine.envelopeReceived(hello(name: String(repeating: "x", count: 257))) else {
            Issue.record("expected a close")
            return
        }
    }

    @Test func pongsCountAsOwedAnswersUntilWritten() {
        var machine = greeted(maxInFlight: 2)
        var ping = Ping()
        ping.payload = Data([9])
        #expect(machine.envelopeReceived(Envelope(requestID: 2, .ping(ping))) == .sendPong(requestID: 2, payload: Data([9])))
        #expect(machine.envelopeReceived(Envelope(requestID: 3, .ping(ping))) == .sendPong(requestID: 3, payload: Data([9])))
        #expect(machine.inFlight == 2)
        #expect(!machine.mayReadMore, "pongs held behind a slow answer must not pile up without bound")
        _ = machine.responseWritten()
        #expect(machine.mayReadMore)
    }

    @Test func aFullSocketStopsReading() {
        var machine = greeted()
        machine.writabilityChanged(false)
        #expect(!machine.mayReadMore, "a client that does not read its answers is not read either")
        machine.writabilityChanged(true)
        #expect(machine.mayReadMore)
    }

    @Test func requestsAreDispatchedUntilInFlightIsFull() {
        var machine = greeted(maxInFlight: 2)
        #expect(machine.envelopeReceived(get(2)) == .dispatch(requestID: 2, get(2).message!))
        #expect(machine.mayReadMore)
        #expect(machine.envelopeReceived(get(3)) == .dispatch(requestID: 3, get(3).message!))
        #expect(!machine.mayReadMore, "two in flight: stop reading")
        #expect(machine.responseWritten() == .none)
        #expect(machine.mayReadMore && machine.inFlight == 1)
    }

    @Test func secondHelloAndEmptyEnvelopesAreRefusedButServingGoesOn() {
        var machine = greeted()
        guard case .sendError(2, .invalidArgument, _) = machine.envelopeReceived(hello(id: 2)) else {
            Issue.record("expected invalid argument")
            return
        }
        guard case .sendError(3, .invalidArgument, _) = machine.envelopeReceived(emptyEnvelope(id: 3)) else {
            Issue.record("expected invalid argument")
            return
        }
        #expect(machine.envelopeReceived(get(4)) == .dispatch(requestID: 4, get(4).message!))
    }

    @Test func requestIDZeroIsAProtocolError() {
        var machine = greeted()
        guard case .sendErrorAndClose(.protocol, let message) = machine.envelopeReceived(get(0)) else {
            Issue.record("request id 0 is reserved for the server")
            return
        }
        #expect(message.contains("request_id 0 is reserved"))
        #expect(machine.isClosed)
    }

    @Test func internalMessagesAreRefusedOnTheClientSocketOnly() {
        var client = greeted()
        guard case .sendError(2, .invalidArgument, let message) = client.envelopeReceived(Envelope(requestID: 2, .heartbeat(.init()))) else {
            Issue.record("expected invalid argument")
            return
        }
        #expect(message.contains("heartbeat is an internal message"))

        var worker = ServerConnectionStateMachine(maxInFlight: 4, acceptsInternalMessages: true)
        _ = worker.envelopeReceived(hello())
        #expect(worker.envelopeReceived(Envelope(requestID: 2, .heartbeat(.init()))) == .dispatch(requestID: 2, .heartbeat(.init())))
    }

    @Test func decodingErrorClosesWithProtocolError() {
        var machine = greeted()
        let action = machine.decodingFailed(WireError(.reservedFlags, "bad flags"))
        #expect(action == .sendErrorAndClose(code: .protocol, message: "bad flags"))
        #expect(machine.decodingFailed(WireError(.reservedFlags, "again")) == .none)
    }

    @Test func inputEndingMidFrameIsATruncationError() {
        var machine = greeted()
        guard case .sendErrorAndClose(.protocol, let message) = machine.inputEnded(unreadBytes: 7) else {
            Issue.record("expected a protocol error")
            return
        }
        #expect(message.contains("7 bytes into a frame"))
    }

    @Test func inputEndingCleanlyDrainsInFlightThenCloses() {
        var machine = greeted()
        _ = machine.envelopeReceived(get(2))
        #expect(machine.inputEnded(unreadBytes: 0) == .none, "one answer still owed")
        #expect(!machine.mayReadMore)
        #expect(machine.envelopeReceived(get(3)) == .none, "nothing new while draining")
        #expect(machine.responseWritten() == .close)
    }

    @Test func shutdownTellsTheClientWhyOnceEverythingIsAnswered() {
        var machine = greeted()
        _ = machine.envelopeReceived(get(2))
        #expect(machine.shutdownRequested() == .none)
        guard case .sendErrorAndClose(.unavailable, let message) = machine.responseWritten() else {
            Issue.record("expected the shutdown notice")
            return
        }
        #expect(message.contains("shutting down"))
        var idle = greeted()
        guard case .sendErrorAndClose(.unavailable, _) = idle.shutdownRequested() else {
            Issue.record("expected the shutdown notice at once")
            return
        }
    }

    @Test func idleTimeoutSparesConnectionsWaitingForAnAnswer() {
        var machine = greeted()
        _ = machine.envelopeReceived(get(2))
        #expect(machine.idleTimeoutFired(after: .seconds(1)) == .none)
        _ = machine.responseWritten()
        guard case .sendErrorAndClose(.unavailable, _) = machine.idleTimeoutFired(after: .seconds(1)) else {
            Issue.record("expected the idle close")
            return
        }
    }
}

private func emptyEnvelope(id: UInt64) -> Envelope {
    var envelope = Envelope()
    envelope.requestID = id
    return envelope
}
