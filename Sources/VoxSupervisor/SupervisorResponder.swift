import NIOCore
import VoxTransport
import VoxWire

/// Serves the supervisor's control socket (`<run>/control.sock`): `status` for `voxsync status`.
public struct SupervisorResponder: ServerResponder {
    let supervisor: Supervisor

    public init(supervisor: Supervisor) {
        self.supervisor = supervisor
    }

    public func respond(to request: Envelope.OneOf_Message, connection: ConnectionInfo) -> ServerResponse {
        switch request {
        case .status:
            return .later(supervisor.status().map { .statusOk($0) })
        default:
            return .now(.error(Envelope.error(
                requestID: 0, code: .invalidArgument,
                message: "the control socket serves status only; send \(request.name) to the client socket").error))
        }
    }
}
