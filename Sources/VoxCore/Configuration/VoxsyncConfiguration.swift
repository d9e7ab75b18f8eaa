import Foundation

/// Everything a voxsync instance can be told, with its defaults.
///
/// Sources, later ones winning: built-in defaults, the JSON config file (`--config`), the
/// environment (`VOXSYNC_<KEY>` in upper case, e.g. `VOXSYNC_DATA_DIR`), command-line flags
/// (`--data-dir`, `--set key=value`). `ConfigurationKeys.all` lists every key; README.md
/// ("Configuration") is generated from the same list by `voxsyncd config --keys`.
public struct VoxsyncConfiguration: Sendable, Equatable {
    /// Where the SQLite store, the lock file and the run directory live.
    public var dataDirectory: String = DefaultPaths.dataDirectory()
    /// Client socket; nil means `<data>/run/voxsync.sock`.
    public var socketPath: String?
    public var logLevel: String = "info"
    /// Event-loop threads of the cache worker. Connections are spread over them and each
    /// answers its own, holding the cache's lock only for the lookup (see `CacheService`): two
    /// let socket I/O and protobuf of different connections run on both cores of a small
    /// machine (verify at 50 clients about +20 % over one on the 2-core benchmark machine).
    public var eventLoopThreads = 2
    /// `epoll` or `nio`: what serves the cache worker's client socket (see `client_io`).
    public var clientIO = "epoll"
    /// How long a client event loop polls after its last work before it sleeps (epoll only;
    /// see `BusyPollPolicy` in VoxTransport). 200 µs, the Linux default of
    /// `guest_halt_poll_ns`: on a VM whose idle vCPUs halt it took the 1-client verify p99
    /// from 140-168 µs to 68-83 µs (README, Benchmarks), at the cost of at most that much CPU
    /// per burst of requests.
    public var clientBusyPoll: Duration = .microseconds(200)
    /// Number of float32 values in every embedding (fixed when the store is created).
    public var embeddingDimension = 192
    /// Model tag of the embeddings (fixed when the store is created, like the dimension).
    public var embeddingModel = ProfileRules.defaultModel
    /// SQLite `synchronous` of the store: "full" (every group commit fsynced before it is
    /// acknowledged) or "normal" (acknowledged once written to the OS).
    public var sqliteSynchronous = "full"
    /// Profiles kept in memory by the cache worker.
    public var cacheCapacity = 100_000
    /// Restart, heartbeat and flapping behaviour of the supervisor.
    public var restart = RestartPolicy()
    /// How long a stopping worker may take before it is killed.
    public var shutdownTimeout: Duration = .seconds(10)
    /// Client-socket limits.
    public var maxConnections = 1024
    public var maxInFlightPerConnection = 64
    public var idleTimeout: Duration = .seconds(600)
    public var maxFrameBytes = 16 * 1024 * 1024
    /// Uids allowed on the sockets besides the service's own.
    public var allowedUIDs: [UInt32] = []
    /// PostgreSQL to sync with (`postgres://user:password@host:port/db`); nil: local only.
    public var postgresURL: String?
    /// Sync: speakers per multi-row upsert.
    public var syncBatchSize = 50
    /// Sync: how often the outbox is drained and remote changes pulled without a nudge.
    public var syncInterval: Duration = .seconds(1)
    /// Most often the cache worker nudges the sync worker after commits (`NudgePacing`); a
    /// commit in between waits for the next nudge, at most this long. Zero: after every commit.
    public var syncNudgeInterval: Duration = .milliseconds(5)
    /// Sync: pushes of a row the server refuses before it is dead-lettered.
    public var maxRetryAttempts = 5
    /// Sync: PostgreSQL connections.
    public var postgresPoolSize = 3
    /// Sync: deadline of one PostgreSQL call; a call that takes longer counts as a failure.
    public var postgresTimeout: Duration = .seconds(5)
    /// Sync: consecutive transient failures that open the circuit breaker.
    public var circuitFailureThreshold = 3
    /// Sync: the circuit breaker's first break (it doubles while failures go on, up to 60 s).
    public var circuitBreak: Duration = .seconds(1)
    /// Redis to mirror metrics into (`redis://host:port`, `unix:///path`); nil: none.
    public var redisURL: String?
    /// Prefix of the mirrored Redis keys.
    public var redisPrefix = "voxsync"
    /// Expiry of mirrored Redis values that stop being updated.
    public var redisTTL: Duration = .seconds(3600)
    /// Prometheus endpoint; empty disables it.
    public var metricsAddress = "127.0.0.1:9090"
    /// Whether the processes keep metrics at all (off only to measure what they cost).
    public var metricsEnabled = true
    /// Prefix of every metric name (`voxsync_cache_hits_total`); `jarvis` gives the original
    /// system's names.
    public var metricsNamespace = "voxsync"
    /// Fault injection for tests: a worker role that exits with code 70 right after it starts.
    public var crashAtStart: ServiceRole?
    /// Prefetch: whether the prefetch worker learns and warms the cache (false: it idles).
    public var prefetchEnabled = true
    /// Prefetch: how often the predictions at or above the threshold go to the cache.
    public var prefetchInterval: Duration = .seconds(60)
    /// Prefetch: the look-ahead; speakers expected within it are sent.
    public var prefetchWindow: Duration = .seconds(300)
    /// Prefetch: the confidence a prediction needs (the start value when adaptive).
    public var prefetchThreshold = 0.7
    /// Prefetch: whether the threshold moves (between 0.5 and 0.95) towards a precision of 0.8.
    public var prefetchAdaptive = true
    /// Prefetch: most speakers sent per interval.
    public var prefetchMaxPerInterval = 100
    /// Prefetch: access events kept in `<data>/prefetch.sqlite`.
    public var prefetchHistoryMaxEvents = 1_000_000
    /// Prefetch: days of access history kept.
    public var prefetchHistoryDays = 28

    public init() {}

    /// The run directory (sockets, lock): `<data>/run`.
    public var runDirectory: String { DefaultPaths.runDirectory(dataDirectory: dataDirectory) }
    /// The client socket actually used.
    public var clientSocketPath: String { socketPath ?? runDirectory + "/voxsync.sock" }
    /// The supervisor's control socket (`voxsync status`), in the client socket's directory, so
    /// the CLI finds it from the client socket path alone.
    public var controlSocketPath: String {
        (clientSocketPath as NSString).deletingLastPathComponent + "/control.sock"
    }
    /// A worker's internal socket (worker-to-worker messages, `voxsync sync ...`), next to the
    /// client socket: `<run>/<role>.sock`.
    public func workerSocketPath(_ role: ServiceRole) -> String {
        (clientSocketPath as NSString).deletingLastPathComponent + "/\(role.rawValue).sock"
    }
    public var lockFilePath: String { dataDirectory + "/voxsyncd.lock" }
}
