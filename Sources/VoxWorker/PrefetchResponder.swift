import Foundation
import VoxCore
import VoxTransport
import VoxWire

/// Answers on `<run>/prefetch.sock`: the cache's access events, and `voxsync prefetch
/// predictions`.
struct PrefetchResponder: ServerResponder {
    let engine: PrefetchEngine
    /// Longest look-ahead a predictions request may ask for: a day.
    static let maxWindowSeconds: UInt32 = 86_400
    static let maxLimit: UInt32 = 10_000

    func respond(to request: Envelope.OneOf_Message, connection: ConnectionInfo) -> ServerResponse {
        switch request {
        case .accessEvents(let message):
            guard message.events.count <= PrefetchEngine.maxEventsPerMessage else {
                engine.refuse(message.events.count)
                return .now(Self.error("access_events carries \(message.events.count) events; at most \(PrefetchEngine.maxEventsPerMessage) per message", field: "events"))
            }
            // Invalid events are counted and skipped, not refused with the batch: a refusal
            // would make the cache count the whole message as lost.
            engine.record(message.events, nowMilliseconds: Self.nowMilliseconds())
            return .now(.ack(Ack()))
        case .prefetchPredictions(let request):
            guard request.windowSeconds <= Self.maxWindowSeconds else {
                return .now(Self.error(
                    "window_seconds must be between 1 and \(Self.maxWindowSeconds) (0 means prefetch_window_ms); got \(request.windowSeconds)",
                    field: "window_seconds"))
            }
            guard request.limit <= Self.maxLimit else {
                return .now(Self.error("limit must be between 1 and \(Self.maxLimit) (0 means 100); got \(request.limit)", field: "limit"))
            }
            let window = request.windowSeconds == 0 ? engine.settings.windowMilliseconds : Int64(request.windowSeconds) * 1000
            let limit = request.limit == 0 ? 100 : Int(request.limit)
            return .now(.prefetchPredictionsOk(engine.report(nowMilliseconds: Self.nowMilliseconds(), windowMilliseconds: window, limit: limit)))
        default:
            return .now(Self.error("\(request.name) is not served by the prefetch worker's socket; profile operations go to the client socket"))
        }
    }

    static func error(_ message: String, code: ErrorCode = .invalidArgument, field: String = "") -> Envelope.OneOf_Message {
        .error(Envelope.error(requestID: 0, code: code, message: message, field: field).error)
    }

    static func nowMilliseconds() -> Int64 {
        WallClock.nowMilliseconds()
    }
}
