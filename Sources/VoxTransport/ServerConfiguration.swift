import VoxWire

#if canImport(Glibc)
import Glibc
#endif

/// What a server tells clients about itself in `HelloOk`.
public struct ServerIdentity: Sendable, Equatable {
    /// Shown to clients and in logs, e.g. "voxsyncd 0.1.0 (cache)".
    public var serverName: String
    /// Stable id of this voxsync instance.
    public var instanceID: String
    /// Number of float32 values in every embedding of this store.
    public var embeddingDimension: UInt32
    /// Model tag of the store's embeddings.
    public var embeddingModel: String

    public init(serverName: String, instanceID: String, embeddingDimension: UInt32 = 192, embeddingModel: String = "ecapa-tdnn-192") {
        self.serverName = serverName
        self.instanceID = instanceID
        self.embeddingDimension = embeddingDimension
        self.embeddingModel = embeddingModel
    }
}

/// Limits and access control of a Unix-socket server. Every limit is per server unless it says
/// per connection; the defaults are those in `Protocol/PROTOCOL.md`.
public struct ServerConfiguration: Sendable {
    /// Frame limits and compression.
    public var wire = WireConfiguration()
    /// Connections served at once; one more is answered `OVERLOADED` and closed. Default 1024.
    public var maxConnections = 1024
    /// Requests a connection may have waiting for an answer before the server stops reading
    /// from it (backpressure: the client's writes block, nothing is queued without bound).
    /// Default 64.
    public var maxInFlightPerConnection = 64
    /// A connection with no traffic for this long is sent `UNAVAILABLE` and closed.
    /// Default 10 minutes.
    public var idleTimeout: Duration = .seconds(600)
    /// File mode of the socket file. Default 0600: only the owner can connect.
    public var socketMode: mode_t = 0o600
    /// User ids allowed to connect, checked with SO_PEERCRED. Default: the server's own uid.
    public var allowedUIDs: Set<uid_t> = [getuid()]
    /// Whether the internal messages of `voxsync.proto` are served (worker sockets) or refused
    /// with `INVALID_ARGUMENT` (the client socket, the default).
    public var acceptsInternalMessages = false
    /// Time a graceful shutdown waits for in-flight requests before closing connections.
    public var shutdownGracePeriod: Duration = .seconds(5)
    /// How long an event loop of `EpollSocketServer` keeps polling after its last work before
    /// it sleeps (`BusyPollPolicy`); zero sleeps at once. `UnixSocketServer` (SwiftNIO's
    /// loops) does not poll. Default zero; the cache worker sets `client_busy_poll_us`. More
    /// than a second is taken as a second; a negative value fails the server's start.
    public var busyPoll: Duration = .zero

    public init() {}
}

extension HelloOk {
    /// A server's answer to the handshake: who it is and the limits it holds the client to.
    init(identity: ServerIdentity, configuration: ServerConfiguration) {
        self.init()
        protocolVersion = WireProtocol.version
        serverName = identity.serverName
        instanceID = identity.instanceID
        embeddingDimension = identity.embeddingDimension
        embeddingModel = identity.embeddingModel
        maxFrameBytes = UInt64(configuration.wire.maxFrameBytes)
        maxInFlight = UInt32(configuration.maxInFlightPerConnection)
    }
}
