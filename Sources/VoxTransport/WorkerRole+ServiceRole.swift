import VoxCore
import VoxWire

extension WorkerRole {
    /// The wire form of a worker role.
    public init(_ role: ServiceRole) {
        switch role {
        case .cache: self = .cache
        case .sync: self = .sync
        case .metrics: self = .metrics
        case .prefetch: self = .prefetch
        }
    }

    /// The role this wire value names, if any.
    public var serviceRole: ServiceRole? {
        switch self {
        case .cache: .cache
        case .sync: .sync
        case .metrics: .metrics
        case .prefetch: .prefetch
        default: nil
        }
    }
}
