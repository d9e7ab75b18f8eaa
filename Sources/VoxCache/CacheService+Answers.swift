import CoreMetrics
import CVoxSys
import Foundation
import Logging
import NIOCore
import NIOPosix
import VoxCore
import VoxStore
import VoxTransport
import VoxWire

/// The answers the cache worker builds: responses and errors, each error naming what to fix.
extension CacheService {
    static func getResponse(_ record: ProfileRecord, source: Voxsync_V1_Source) -> Voxsync_V1_GetResponse {
        var profile = Profile()
        profile.speakerID = record.speakerID
        profile.embedding.values = record.embedding
        profile.samples = record.samples.map { var e = Embedding(); e.values = $0; return e }
        profile.threshold = record.threshold
        profile.metadata = record.metadata
        profile.version = record.version
        profile.origin = record.origin
        profile.updatedAtUnixMs = record.updatedAt
        var answer = Voxsync_V1_GetResponse()
        answer.profile = profile
        answer.source = source
        return answer
    }

    static func notFound(_ speakerID: String) -> Envelope.OneOf_Message {
        error(.notFound, "no profile for speaker '\(speakerID)'; enroll it first", field: "speaker_id")
    }

    static func error(_ code: ErrorCode, _ message: String, field: String = "") -> Envelope.OneOf_Message {
        .error(Envelope.error(requestID: 0, code: code, message: message, field: field).error)
    }

    /// The answer for a failed operation: validation, conflict, or a store failure.
    static func answer(for error: Error) -> Envelope.OneOf_Message {
        switch error {
        case let violation as ProfileRules.Violation:
            return self.error(violation.kind == .dimensionMismatch ? .dimensionMismatch : .invalidArgument, violation.description, field: violation.field)
        case let failure as StoreError:
            switch failure.code {
            case .invalid(let violation): return answer(for: violation)
            case .conflict: return self.error(.conflict, failure.message)
            case .incompatible, .io: return self.error(.internal, failure.message)
            }
        default:
            return self.error(.internal, "\(error)")
        }
    }
}
