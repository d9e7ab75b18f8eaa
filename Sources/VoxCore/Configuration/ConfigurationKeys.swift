import Foundation

/// One configuration key: its name, what it means, how its text is parsed and validated, and
/// how it is read back (to hand the effective configuration to the workers).
public struct ConfigurationKey: Sendable {
    public let name: String
    public let help: String
    let parse: @Sendable (String, inout VoxsyncConfiguration) throws(ConfigurationError) -> Void
    let render: @Sendable (VoxsyncConfiguration) -> String?
    /// What a JSON config file may give besides strings and whole numbers: `true`/`false` for a
    /// boolean key, a fraction for a decimal one. Others refuse them with a message.
    var acceptsJSONBoolean = false
    var acceptsJSONFraction = false

    /// `VOXSYNC_DATA_DIR` for `data_dir`.
    public var environmentName: String { "VOXSYNC_" + name.uppercased() }
}

/// Every configuration key voxsync knows.
public enum ConfigurationKeys {
    public static let all: [ConfigurationKey] = [
        string("data_dir", "Data directory: SQLite store, lock file, run/ directory.", \.dataDirectory, absolutePath: true),
        optionalString("socket", "Client socket path (default <data_dir>/run/voxsync.sock).", \.socketPath, absolutePath: true),
        choice("log_level", "trace, debug, info, notice, warning, error or critical.", \.logLevel,
               ["trace", "debug", "info", "notice", "warning", "error", "critical"]),
        integer("event_loop_threads", "Event-loop threads of the cache worker; connections are spread over them and each answers its own.", \.eventLoopThreads, 1...64),
        choice("client_io", "How the cache worker serves the client socket: epoll (its own event loops, the default) or nio (SwiftNIO channels, kept for comparison).",
               \.clientIO, ["epoll", "nio"]),
        microseconds("client_busy_poll_us", "With client_io=epoll: how long a client loop keeps polling after work before it sleeps, so a client's next request finds it awake; it stops early when another thread wants the CPU (CPU for latency; 0: sleep at once).",
                     \.clientBusyPoll, 0...10_000),
        integer("embedding_dimension", "Floats per embedding (fixed when the store is created).", \.embeddingDimension, 1...8192),
        ConfigurationKey(
            name: "embedding_model", help: "Model tag of the embeddings (fixed when the store is created); a request whose vector names another model is refused.",
            parse: { (text, config) throws(ConfigurationError) in
                if let problem = ProfileRules.checkModelTag(text) { throw ConfigurationError("embedding_model \(problem)") }
                config.embeddingModel = text
            },
            render: { $0.embeddingModel }),
        choice("sqlite_synchronous", "full: a write is acknowledged once fsynced (survives power loss); normal: once in the OS (survives a crash of voxsync, not of the machine).",
               \.sqliteSynchronous, ["full", "normal"]),
        integer("cache_capacity", "Profiles kept in memory.", \.cacheCapacity, 1...100_000_000),
        milliseconds("restart_initial_ms", "First restart delay (before jitter).", \.restart.backoff.initial, 1...60_000),
        milliseconds("restart_max_ms", "Longest restart delay; flapping workers are retried at this.", \.restart.backoff.maximum, 1...3_600_000),
        milliseconds("stable_after_ms", "Uptime after which a worker's backoff starts over.", \.restart.stableAfter, 1...86_400_000),
        integer("flap_threshold", "Restarts within flap_window_ms that mark a worker flapping.", \.restart.flapThreshold, 2...10_000),
        milliseconds("flap_window_ms", "Window for flap_threshold.", \.restart.flapWindow, 1...86_400_000),
        milliseconds("heartbeat_interval_ms", "How often the supervisor pings each worker.", \.restart.heartbeatInterval, 10...60_000),
        milliseconds("heartbeat_timeout_ms", "Silence after which a worker is killed and restarted.", \.restart.heartbeatTimeout, 20...600_000),
        milliseconds("shutdown_timeout_ms", "Time a stopping worker gets before SIGKILL.", \.shutdownTimeout, 1...600_000),
        integer("max_connections", "Client connections served at once.", \.maxConnections, 1...1_000_000),
        integer("max_in_flight", "Requests read ahead per connection.", \.maxInFlightPerConnection, 1...65_536),
        milliseconds("idle_timeout_ms", "Idle client connections are closed after this.", \.idleTimeout, 100...86_400_000),
        integer("max_frame_bytes", "Largest frame (and decompressed body) accepted.", \.maxFrameBytes, 1024...(1 << 30)),
        ConfigurationKey(
            name: "allowed_uids", help: "Comma-separated uids allowed on the sockets besides the service's own.",
            parse: { (text, config) throws(ConfigurationError) in
                var uids: [UInt32] = []
                for part in text.split(separator: ",") {
                    guard let uid = UInt32(part.trimmingCharacters(in: .whitespaces)) else {
                        throw ConfigurationError("allowed_uids must be comma-separated numeric uids; '\(part)' is not one")
                    }
                    uids.append(uid)
                }
                config.allowedUIDs = uids
            },
            render: { $0.allowedUIDs.isEmpty ? nil : $0.allowedUIDs.map(String.init).joined(separator: ",") }),
        checkedURL("postgres_url", "PostgreSQL to sync with (postgres://user:pw@host:port/db?sslmode=require); unset keeps the store local.",
                   \.postgresURL) { text throws(ConfigurationError) in _ = try PostgresURL(parsing: text) },
        integer("sync_batch_size", "Speakers per multi-row upsert to PostgreSQL.", \.syncBatchSize, 1...10_000),
        milliseconds("sync_interval_ms", "Outbox drain and remote pull interval when nothing nudges.", \.syncInterval, 10...3_600_000),
        milliseconds("sync_nudge_interval_ms", "Most often the cache worker nudges the sync worker after commits; a commit in between is pushed at most this much later (0: a nudge after every commit).", \.syncNudgeInterval, 0...1000),
        integer("max_retry_attempts", "Pushes of a row PostgreSQL refuses before it is dead-lettered.", \.maxRetryAttempts, 1...1000),
        integer("postgres_pool_size", "PostgreSQL connections of the sync worker.", \.postgresPoolSize, 1...64),
        milliseconds("postgres_timeout_ms", "Deadline of one PostgreSQL call (connecting included); longer counts as a failure.", \.postgresTimeout, 100...600_000),
        integer("circuit_failure_threshold", "Consecutive PostgreSQL failures that open the circuit breaker.", \.circuitFailureThreshold, 1...1000),
        milliseconds("circuit_break_ms", "First circuit-breaker break; doubles while failures go on, up to 60 s.", \.circuitBreak, 10...60_000),
        checkedURL("redis_url", "Redis to mirror metrics into (redis://[:password@]host:port/db or unix:///path); unset: no mirror.",
                   \.redisURL) { text throws(ConfigurationError) in _ = try RedisURL(parsing: text) },
        ConfigurationKey(
            name: "redis_prefix", help: "Prefix of every Redis key (<prefix>:metrics:<name>:<instance>).",
            parse: { (text, config) throws(ConfigurationError) in
                guard !text.isEmpty, text.utf8.count <= 64, !text.contains(where: { $0.isWhitespace || $0 == ":" }) else {
                    throw ConfigurationError("redis_prefix must be 1-64 characters without spaces or ':'; got '\(text)'")
                }
                config.redisPrefix = text
            },
            render: { $0.redisPrefix }),
        milliseconds("redis_ttl_ms", "Expiry of mirrored Redis values without news.", \.redisTTL, 1000...604_800_000),
        ConfigurationKey(
            name: "metrics_address", help: "host:port of the Prometheus endpoint; empty disables it.",
            parse: { (text, config) throws(ConfigurationError) in
                if !text.isEmpty {
                    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65_535).contains(port),
                          colon != text.startIndex else {
                        throw ConfigurationError("metrics_address must be host:port (e.g. 127.0.0.1:9090) or empty; got '\(text)'")
                    }
                }
                config.metricsAddress = text
            },
            render: { $0.metricsAddress }),
        boolean("metrics_enabled", "true or false: keep and report metrics (false only to measure their cost).", \.metricsEnabled),
        ConfigurationKey(
            name: "metrics_namespace", help: "Prefix of every metric name; jarvis gives the original system's names.",
            parse: { (text, config) throws(ConfigurationError) in
                guard PrometheusName.isValid(text, maxBytes: 64) else {
                    throw ConfigurationError("metrics_namespace must be letters, digits and _ (not starting with a digit), at most 64; got '\(text)'")
                }
                config.metricsNamespace = text
            },
            render: { $0.metricsNamespace }),
        ConfigurationKey(
            name: "crash_at_start", help: "Testing only: this worker role exits with code 70 as soon as it starts.",
            parse: { (text, config) throws(ConfigurationError) in
                guard let role = ServiceRole(rawValue: text) else {
                    throw ConfigurationError("crash_at_start must be one of cache, sync, metrics, prefetch; got '\(text)'")
                }
                config.crashAtStart = role
            },
            render: { $0.crashAtStart?.rawValue }),
        boolean("prefetch_enabled", "true or false: learn access patterns and warm the cache (false: the prefetch worker idles).",
                \.prefetchEnabled),
        milliseconds("prefetch_interval_ms", "How often predicted speakers are sent to the cache.", \.prefetchInterval, 10...3_600_000),
        milliseconds("prefetch_window_ms", "Look-ahead: speakers expected within this are prefetched.", \.prefetchWindow, 1000...86_400_000),
        decimal("prefetch_threshold", "Confidence (0-1) a prediction needs to be prefetched; the start value when adaptive.",
                \.prefetchThreshold, 0...1),
        boolean("prefetch_adaptive", "true or false: move the threshold within 0.5-0.95 (widened to include prefetch_threshold) towards a measured precision of 0.8.",
                \.prefetchAdaptive),
        integer("prefetch_max_per_interval", "Most speakers sent to the cache per interval (and never more than a tenth of cache_capacity).", \.prefetchMaxPerInterval, 1...100_000),
        integer("prefetch_history_max_events", "Access events kept in <data_dir>/prefetch.sqlite (oldest pruned first).",
                \.prefetchHistoryMaxEvents, 1000...100_000_000),
        integer("prefetch_history_days", "Days of access history kept.", \.prefetchHistoryDays, 1...365),
    ]

    /// An optional URL: empty unsets it; otherwise `check` must accept it (it parses the URL
    /// and throws a message naming what is wrong).
    private static func checkedURL(
        _ name: String, _ help: String, _ path: WritableKeyPath<VoxsyncConfiguration, String?> & Sendable,
        check: @escaping @Sendable (String) throws(ConfigurationError) -> Void
    ) -> ConfigurationKey {
        ConfigurationKey(
            name: name, help: help,
            parse: { (text, config) throws(ConfigurationError) in
                if !text.isEmpty { try check(text) }
                config[keyPath: path] = text.isEmpty ? nil : text
            },
            render: { $0[keyPath: path] })
    }

    public static func named(_ name: String) -> ConfigurationKey? {
        all.first { $0.name == name }
    }

    // MARK: Key kinds

    private static func string(_ name: String, _ help: String, _ path: WritableKeyPath<VoxsyncConfiguration, String> & Sendable, absolutePath: Bool) -> ConfigurationKey {
        pathKey(name, help, absolutePath: absolutePath, set: { $0[keyPath: path] = $1 }, get: { $0[keyPath: path] })
    }

    private static func optionalString(_ name: String, _ help: String, _ path: WritableKeyPath<VoxsyncConfiguration, String?> & Sendable, absolutePath: Bool) -> ConfigurationKey {
        pathKey(name, help, absolutePath: absolutePath, set: { $0[keyPath: path] = $1 }, get: { $0[keyPath: path] })
    }

    private static func pathKey(
        _ name: String, _ help: String, absolutePath: Bool,
        set: @escaping @Sendable (inout VoxsyncConfiguration, String) -> Void,
        get: @escaping @Sendable (VoxsyncConfiguration) -> String?
    ) -> ConfigurationKey {
        ConfigurationKey(
            name: name, help: help,
            parse: { (text, config) throws(ConfigurationError) in
                try checkPath(text, key: name, absolute: absolutePath)
                set(&config, text)
            },
            render: get)
    }

    private static func checkPath(_ text: String, key: String, absolute: Bool) throws(ConfigurationError) {
        guard !text.isEmpty else { throw ConfigurationError("\(key) must not be empty") }
        if absolute && !text.hasPrefix("/") {
            throw ConfigurationError("\(key) must be an absolute path; got '\(text)'")
        }
    }

    private static func choice(_ name: String, _ help: String, _ path: WritableKeyPath<VoxsyncConfiguration, String> & Sendable, _ options: [String]) -> ConfigurationKey {
        ConfigurationKey(
            name: name, help: help,
            parse: { (text, config) throws(ConfigurationError) in
                guard options.contains(text) else {
                    throw ConfigurationError("\(name) must be one of \(options.joined(separator: ", ")); got '\(text)'")
                }
                config[keyPath: path] = text
            },
            render: { $0[keyPath: path] })
    }

    private static func boolean(_ name: String, _ help: String, _ path: WritableKeyPath<VoxsyncConfiguration, Bool> & Sendable) -> ConfigurationKey {
        var key = ConfigurationKey(
            name: name, help: help,
            parse: { (text, config) throws(ConfigurationError) in
                guard let value = Bool(text.trimmingCharacters(in: .whitespaces).lowercased()) else {
                    throw ConfigurationError("\(name) must be true or false; got '\(text)'")
                }
                config[keyPath: path] = value
            },
            render: { String($0[keyPath: path]) })
        key.acceptsJSONBoolean = true
        return key
    }

    /// A finite decimal number within `range`.
    private static func decimal(_ name: String, _ help: String, _ path: WritableKeyPath<VoxsyncConfiguration, Double> & Sendable, _ range: ClosedRange<Double>) -> ConfigurationKey {
        var key = ConfigurationKey(
            name: name, help: help,
            parse: { (text, config) throws(ConfigurationError) in
                guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite else {
                    throw ConfigurationError("\(name) must be a number; got '\(text)'")
                }
                guard range.contains(value) else {
                    throw ConfigurationError("\(name) must be between \(range.lowerBound) and \(range.upperBound); got \(value)")
                }
                config[keyPath: path] = value
            },
            render: { String($0[keyPath: path]) })
        key.acceptsJSONFraction = true
        return key
    }

    private static func integer(_ name: String, _ help: String, _ path: WritableKeyPath<VoxsyncConfiguration, Int> & Sendable, _ range: ClosedRange<Int>) -> ConfigurationKey {
        wholeNumber(name, help, range, unit: "", set: { $0[keyPath: path] = $1 }, get: { $0[keyPath: path] })
    }

    private static func milliseconds(_ name: String, _ help: String, _ path: WritableKeyPath<VoxsyncConfiguration, Duration> & Sendable, _ range: ClosedRange<Int>) -> ConfigurationKey {
        wholeNumber(
            name, help, range, unit: "milliseconds",
            set: { $0[keyPath: path] = .milliseconds($1) }, get: { Int(($0[keyPath: path].seconds * 1000).rounded()) })
    }

    private static func microseconds(_ name: String, _ help: String, _ path: WritableKeyPath<VoxsyncConfiguration, Duration> & Sendable, _ range: ClosedRange<Int>) -> ConfigurationKey {
        wholeNumber(
            name, help, range, unit: "microseconds",
            set: { $0[keyPath: path] = .microseconds($1) }, get: { Int(($0[keyPath: path].seconds * 1_000_000).rounded()) })
    }

    /// A whole number within `range`, stored through `set` (as a count or a duration).
    private static func wholeNumber(
        _ name: String, _ help: String, _ range: ClosedRange<Int>, unit: String,
        set: @escaping @Sendable (inout VoxsyncConfiguration, Int) -> Void,
        get: @escaping @Sendable (VoxsyncConfiguration) -> Int
    ) -> ConfigurationKey {
        let of = unit.isEmpty ? "" : " of \(unit)"
        let suffix = ["milliseconds": " ms", "microseconds": " µs"][unit] ?? ""
        return ConfigurationKey(
            name: name, help: help,
            parse: { (text, config) throws(ConfigurationError) in
                guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                    throw ConfigurationError("\(name) must be a whole number\(of); got '\(text)'")
                }
                guard range.contains(value) else {
                    throw ConfigurationError("\(name) must be between \(range.lowerBound) and \(range.upperBound)\(suffix); got \(value)")
                }
                set(&config, value)
            },
            render: { String(get($0)) })
    }
}
