// swift-tools-version:6.0
import PackageDescription

/// voxsync: a local-first store for voice-biometric profiles.
///
/// Dependencies point one way: C shims and the wire format at the bottom, executables at the top.
/// See README.md ("Source layout") for what lives where.
let package = Package(
    name: "voxsync",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "voxsyncd", targets: ["voxsyncd"]),
        .executable(name: "voxsync", targets: ["voxsync"]),
        .executable(name: "voxsync-bench", targets: ["voxsync-bench"]),
        .library(name: "VoxClient", targets: ["VoxClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    ],
    targets: [
        // MARK: System libraries (Debian packages; shims re-export macros Swift cannot import)
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),

        .systemLibrary(name: "CVoxSys"),

        // MARK: Libraries
        .target(
            name: "VoxWire",
            dependencies: [
                "CZstd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["Generated/README.md"]
        ),
        .target(name: "VoxCore"),
        .target(
            name: "VoxTransport",
            dependencies: [
                "VoxWire",
                "VoxCore",
                "CVoxSys",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "VoxClient",
            dependencies: [
                "VoxWire",
                "VoxCore",
                "VoxTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        .target(name: "VoxStore", dependencies: ["CSQLite", "VoxCore"]),
        // Pure: the chaos run's schedule, write ledger and audit rules (voxsync-bench chaos).
        .target(name: "VoxChaos"),
        // Pure: the prefetch predictor, its planner and threshold, and the trace replay.
        .target(name: "VoxPrefetch", dependencies: ["VoxCore"]),
        .target(
            name: "VoxCache",
            dependencies: [
                "VoxCore", "VoxStore", "VoxWire", "VoxTransport", "CVoxSys",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "VoxSync",
            dependencies: [
                "VoxCore", "VoxStore", "VoxWire", "VoxTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(
            name: "VoxMetrics",
            dependencies: [
                "VoxWire", "VoxTransport", "VoxCore", "CHiredis",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "VoxSupervisor",
            dependencies: [
                "VoxCore", "VoxWire", "VoxTransport", "CVoxSys",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "VoxWorker",
            dependencies: [
                "VoxCore", "VoxWire", "VoxTransport", "VoxCache", "VoxStore", "VoxSync", "VoxMetrics", "VoxPrefetch", "CVoxSys",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // MARK: Executables
        .executableTarget(
            name: "voxsyncd",
            dependencies: [
                "VoxSupervisor", "VoxMetrics",
                "VoxWorker",
                "VoxWire",
                "VoxCore",
                "VoxTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "voxsync",
            dependencies: [
                "VoxClient",
                "VoxCore",
                "VoxTransport",
                "VoxWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "voxsync-bench",
            dependencies: [
                "VoxClient", "VoxStore", "VoxSync", "VoxPrefetch", "VoxChaos",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                "VoxCore",
                "VoxWire", "CVoxSys",
                "VoxTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Tests
        .target(
            name: "VoxTestSupport",
            dependencies: [
                "CZstd", "VoxCore", "VoxSync",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/VoxTestSupport"
        ),
        .testTarget(name: "VoxWireTests", dependencies: ["VoxWire", "VoxTestSupport", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "VoxCoreTests", dependencies: ["VoxCore", "VoxTestSupport"]),
        .testTarget(name: "VoxStoreTests", dependencies: ["VoxStore", "VoxCore"]),
        .testTarget(name: "VoxPrefetchTests", dependencies: ["VoxPrefetch", "VoxCore", "VoxTestSupport"]),
        .testTarget(name: "VoxChaosTests", dependencies: ["VoxChaos"]),
        .testTarget(
            name: "VoxCacheTests",
            dependencies: [
                "VoxCache", "VoxStore", "VoxCore", "VoxWire", "VoxTransport", "VoxTestSupport",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "VoxTransportTests",
            dependencies: [
                "VoxTransport", "VoxWire", "VoxClient", "VoxTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "VoxMetricsTests",
            dependencies: ["VoxMetrics", "VoxWire", .product(name: "CoreMetrics", package: "swift-metrics")]
        ),
        .testTarget(
            name: "VoxSyncTests",
            dependencies: [
                "VoxSync", "VoxStore", "VoxCore", "VoxTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "VoxClient", "VoxCore", "VoxWire", "VoxTransport", "VoxStore", "VoxSync", "VoxMetrics", "VoxTestSupport", "CVoxSys",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
