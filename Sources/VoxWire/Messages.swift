import SwiftProtobuf

// Short names for the generated protobuf types (Generated/voxsync.pb.swift). Code outside
// VoxWire uses these, so a package rename in the .proto touches one file.

public typealias Envelope = Voxsync_V1_Envelope
public typealias Hello = Voxsync_V1_Hello
public typealias HelloOk = Voxsync_V1_HelloOk
public typealias Ping = Voxsync_V1_Ping
public typealias Pong = Voxsync_V1_Pong
public typealias ErrorMessage = Voxsync_V1_Error
public typealias ErrorCode = Voxsync_V1_ErrorCode
public typealias Embedding = Voxsync_V1_Embedding
public typealias Profile = Voxsync_V1_Profile
public typealias Source = Voxsync_V1_Source
public typealias WorkerRole = Voxsync_V1_WorkerRole
public typealias WorkerStatus = Voxsync_V1_WorkerStatus
public typealias StatusResponse = Voxsync_V1_StatusResponse
public typealias Ack = Voxsync_V1_Ack

/// Protocol-level constants shared by every client and server.
public enum WireProtocol {
    /// The protocol version this build speaks (Hello.protocol_version / HelloOk.protocol_version).
    public static let version: UInt32 = 1
}

extension Envelope {
    /// An envelope carrying `message`, answering (or numbered as) `requestID`.
    @inlinable
    public init(requestID: UInt64, _ message: OneOf_Message) {
        self.init()
        self.requestID = requestID
        self.message = message
    }

    /// An `Error` envelope; `requestID` 0 means the error concerns the whole connection.
    public static func error(
        requestID: UInt64,
        code: ErrorCode,
        message: String,
        field: String = ""
    ) -> Envelope {
        var error = ErrorMessage()
        error.code = code
        error.message = message
        error.field = field
        return Envelope(requestID: requestID, .error(error))
    }
}

extension Envelope.OneOf_Message {
    /// The protobuf field name of the case, for logs and error messages ("ping", "put", ...).
    public var name: String {
        switch self {
        case .hello: "hello"
        case .helloOk: "hello_ok"
        case .ping: "ping"
        case .pong: "pong"
        case .error: "error"
        case .put: "put"
        case .putOk: "put_ok"
        case .get: "get"
        case .getOk: "get_ok"
        case .verify: "verify"
        case .verifyOk: "verify_ok"
        case .identify: "identify"
        case .identifyOk: "identify_ok"
        case .delete: "delete"
        case .deleteOk: "delete_ok"
        case .list: "list"
        case .listOk: "list_ok"
        case .stats: "stats"
        case .statsOk: "stats_ok"
        case .workerReady: "worker_ready"
        case .heartbeat: "heartbeat"
        case .heartbeatAck: "heartbeat_ack"
        case .status: "status"
        case .statusOk: "status_ok"
        case .shutdown: "shutdown"
        case .metricsSnapshot: "metrics_snapshot"
        case .accessEvents: "access_events"
        case .prefetchList: "prefetch_list"
        case .outboxNudge: "outbox_nudge"
        case .invalidate: "invalidate"
        case .ack: "ack"
        case .syncStatus: "sync_status"
        case .syncStatusOk: "sync_status_ok"
        case .deadLetters: "dead_letters"
        case .deadLettersOk: "dead_letters_ok"
        case .retryDeadLetters: "retry_dead_letters"
        case .retryDeadLettersOk: "retry_dead_letters_ok"
        case .prefetchPredictions: "prefetch_predictions"
        case .prefetchPredictionsOk: "prefetch_predictions_ok"
        case .prefetchListOk: "prefetch_list_ok"
        }
    }

    /// Whether the message belongs to the service's own processes (supervisor, workers) rather
    /// than to clients. The client socket refuses these.
    public var isInternal: Bool {
        switch self {
        case .workerReady, .heartbeat, .heartbeatAck, .status, .statusOk, .shutdown, .metricsSnapshot,
             .accessEvents, .prefetchList, .prefetchListOk, .outboxNudge, .invalidate, .ack:
            true
        default:
            false
        }
    }

    /// Whether sending the request twice has the same effect as sending it once, so a client
    /// may resend it on a new connection when the old one broke before the answer arrived.
    /// Writes (`put`) are not: a resent put would mint a second version.
    public var isIdempotentRequest: Bool {
        switch self {
        case .hello, .ping, .get, .verify, .identify, .list, .stats, .status, .delete, .syncStatus, .deadLetters,
             .prefetchPredictions: true
        default: false
        }
    }
}
