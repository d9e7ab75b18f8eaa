import VoxCore
import VoxWire

/// How a `VoxClient` connects, waits and retries. Defaults suit a local voice assistant:
/// short timeouts, and patience across a worker restart.
public struct VoxClientConfiguration: Sendable {
    /// Path of the voxsync socket, e.g. `~/.local/share/voxsync/run/voxsync.sock`.
    public var socketPath: String
    /// Shown in the server's logs.
    public var clientName = "voxsync-swift"
    /// How long one call may take in all, retries and reconnects included. Default 5 s.
    public var requestTimeout: Duration = .seconds(5)
    /// How long to keep trying to connect when nothing listens (the service is starting or a
    /// worker restarts) before a call fails `unavailable`. Bounded by `requestTimeout` too.
    public var connectTimeout: Duration = .seconds(5)
    /// Pause between connection attempts.
    public var reconnectBackoff = ExponentialBackoff(initial: .milliseconds(2), maximum: .milliseconds(200), multiplier: 2, jitter: 0.5)
    /// How many times an idempotent request is resent on a new connection after the old one
    /// broke before its answer arrived. Writes are never resent.
    public var maxRetries = 5
    /// Frame limits and compression.
    public var wire = WireConfiguration()

    public init(socketPath: String) {
        self.socketPath = socketPath
    }
}
