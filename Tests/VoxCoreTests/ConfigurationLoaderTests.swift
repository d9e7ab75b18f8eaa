import Foundation
import Testing
import VoxCore

@Suite struct ConfigurationLoaderTests {
    func write(_ json: String) -> String {
        let path = NSTemporaryDirectory() + "voxsync-config-\(UUID().uuidString).json"
        _ = FileManager.default.createFile(atPath: path, contents: Data(json.utf8))
        return path
    }

    @Test func defaultsAreDocumentedValues() throws {
        let config = try ConfigurationLoader.load(environment: [:])
        #expect(config.embeddingDimension == 192)
        #expect(config.embeddingModel == "ecapa-tdnn-192" && config.sqliteSynchronous == "full")
        #expect(config.restart.backoff.initial == .milliseconds(10))
        #expect(config.maxFrameBytes == 16 << 20)
        #expect(config.clientSocketPath == config.dataDirectory + "/run/voxsync.sock")
        #expect(config.postgresURL == nil)
    }

    @Test func fileThenEnvironmentThenFlagsEachWin() throws {
        let file = write(#"{"cache_capacity": 500, "log_level": "debug", "heartbeat_timeout_ms": 900}"#)
        let config = try ConfigurationLoader.load(
            file: file,
            environment: ["VOXSYNC_CACHE_CAPACITY": "600", "VOXSYNC_DATA_DIR": "/srv/vox", "UNRELATED": "x"],
            overrides: [(key: "cache_capacity", value: "700")])
        #expect(config.cacheCapacity == 700)
        #expect(config.logLevel == "debug")
        #expect(config.restart.heartbeatTimeout == .milliseconds(900))
        #expect(config.dataDirectory == "/srv/vox")
        #expect(config.controlSocketPath == "/srv/vox/run/control.sock")
    }

    @Test func unknownKeysAreNamed() {
        let file = write(#"{"cache_size": 5}"#)
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(file: file, environment: [:]) }
        #expect(error?.message.contains("unknown key 'cache_size'") == true)
        #expect(error?.message.contains("cache_capacity") == true, "the known keys are listed")
        let flag = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(environment: [:], overrides: [(key: "nope", value: "1")])
        }
        #expect(flag?.message.contains("unknown configuration key 'nope'") == true)
    }

    @Test func wrongTypesAreExplained() {
        for (json, fragment) in [
            (#"{"cache_capacity": "lots"}"#, "cache_capacity must be a whole number; got 'lots'"),
            (#"{"cache_capacity": true}"#, "must be a number or a string, not true/false"),
            (#"{"cache_capacity": 1.5}"#, "must be a whole number; got 1.5"),
            (#"{"cache_capacity": [1]}"#, "not a list or an object"),
            (#"{"cache_capacity": 0}"#, "between 1 and 100000000; got 0"),
            (#"{"log_level": "loud"}"#, "log_level must be one of trace"),
            (#"{"sqlite_synchronous": "off"}"#, "sqlite_synchronous must be one of full, normal; got 'off'"),
            (#"{"embedding_model": "my model"}"#, "embedding_model may hold only letters, digits"),
            (#"{"embedding_model": ""}"#, "embedding_model must be 1-64 bytes"),
            (#"{"data_dir": "relative/dir"}"#, "data_dir must be an absolute path"),
            (#"{"metrics_address": "9090"}"#, "metrics_address must be host:port"),
            (#"["not", "an", "object"]"#, "must hold a JSON object"),
            (#"{"broken": "#, "is not valid JSON"),
        ] {
            let file = write(json)
            let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(file: file, environment: [:]) }
            #expect(error?.message.contains(fragment) == true, "\(json): \(error?.message ?? "no error")")
            #expect(error?.message.contains(file) == true, "the file is named")
        }
    }

    @Test func environmentErrorsNameTheVariable() {
        let error = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(environment: ["VOXSYNC_MAX_IN_FLIGHT": "-3"])
        }
        #expect(error?.message.contains("environment variable VOXSYNC_MAX_IN_FLIGHT") == true)
    }

    @Test func missingFileIsExplained() {
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(file: "/nonexistent/voxsync.json", environment: [:]) }
        #expect(error?.message.contains("cannot read config file /nonexistent/voxsync.json") == true)
    }

    @Test func passwordsNeverAppearInErrors() {
        let error = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(environment: ["VOXSYNC_POSTGRES_URL": "mysql://app:s3cret@db/x"])
        }
        #expect(error?.message.contains("s3cret") == false)
        #expect(ConfigurationLoader.redacted("postgres://app:s3cret@db:5432/x") == "postgres://app:***@db:5432/x")
    }

    @Test func serializedConfigurationRoundTrips() throws {
        var original = try ConfigurationLoader.load(environment: [
            "VOXSYNC_DATA_DIR": "/srv/v", "VOXSYNC_ALLOWED_UIDS": "1000, 1001", "VOXSYNC_POSTGRES_URL": "postgres://u@h/d",
            "VOXSYNC_HEARTBEAT_INTERVAL_MS": "250", "VOXSYNC_CRASH_AT_START": "sync",
            "VOXSYNC_EMBEDDING_MODEL": "wavlm-base-plus-sv", "VOXSYNC_SQLITE_SYNCHRONOUS": "normal",
        ])
        #expect(original.embeddingModel == "wavlm-base-plus-sv" && original.sqliteSynchronous == "normal")
        original.socketPath = "/srv/v/custom.sock"
        var copy = VoxsyncConfiguration()
        try ConfigurationLoader.apply(json: ConfigurationLoader.serialized(original), source: "test", to: &copy)
        #expect(copy == original)
    }

    @Test func prefetchKeysHaveTheirDefaultsRangesAndJSONTypes() throws {
        let defaults = try ConfigurationLoader.load(environment: [:])
        #expect(defaults.prefetchEnabled && defaults.prefetchAdaptive)
        #expect(defaults.prefetchInterval == .seconds(60) && defaults.prefetchWindow == .seconds(300))
        #expect(defaults.prefetchThreshold == 0.7 && defaults.prefetchMaxPerInterval == 100)
        #expect(defaults.prefetchHistoryMaxEvents == 1_000_000 && defaults.prefetchHistoryDays == 28)
        #expect(ConfigurationKeys.all.filter { $0.name.hasPrefix("prefetch_") }.count == 8)

        // A JSON file may give booleans and fractions where the key takes them.
        let file = write(#"{"prefetch_enabled": false, "prefetch_threshold": 0.85, "prefetch_adaptive": "false", "metrics_enabled": false}"#)
        let loaded = try ConfigurationLoader.load(file: file, environment: ["VOXSYNC_PREFETCH_INTERVAL_MS": "200"])
        #expect(!loaded.prefetchEnabled && !loaded.prefetchAdaptive && !loaded.metricsEnabled)
        #expect(loaded.prefetchThreshold == 0.85 && loaded.prefetchInterval == .milliseconds(200))
        var copy = VoxsyncConfiguration()
        try ConfigurationLoader.apply(json: ConfigurationLoader.serialized(loaded), source: "test", to: &copy)
        #expect(copy == loaded)

        for (setting, fragment) in [
            ("prefetch_threshold=1.5", "prefetch_threshold must be between 0.0 and 1.0; got 1.5"),
            ("prefetch_threshold=high", "prefetch_threshold must be a number; got 'high'"),
            ("prefetch_threshold=nan", "prefetch_threshold must be a number; got 'nan'"),
            ("prefetch_interval_ms=5", "prefetch_interval_ms must be between 10 and 3600000 ms; got 5"),
            ("prefetch_window_ms=999", "prefetch_window_ms must be between 1000 and 86400000 ms; got 999"),
            ("prefetch_enabled=yes", "prefetch_enabled must be true or false; got 'yes'"),
            ("prefetch_max_per_interval=0", "between 1 and 100000; got 0"),
            ("prefetch_history_max_events=10", "between 1000 and 100000000; got 10"),
            ("prefetch_history_days=366", "between 1 and 365; got 366"),
        ] {
            let parts = setting.split(separator: "=", maxSplits: 1).map(String.init)
            let error = #expect(throws: ConfigurationError.self) {
                try ConfigurationLoader.load(environment: [:], overrides: [(key: parts[0], value: parts[1])])
            }
            #expect(error?.message.contains(fragment) == true, "\(setting): \(error?.message ?? "no error")")
        }
        let whole = write(#"{"cache_capacity": 1.5, "prefetch_history_days": true}"#)
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(file: whole, environment: [:]) }
        #expect(error?.message.contains("must be a whole number; got 1.5") == true || error?.message.contains("not true/false") == true)
    }
}
