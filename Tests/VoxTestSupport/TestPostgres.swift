import Foundation
import Logging
import PostgresNIO
import VoxCore
import VoxSync

/// The PostgreSQL server `launch/test` starts (`VOXSYNC_TEST_POSTGRES_URL`); each test gets a
/// database of its own, so tests run in parallel without seeing each other's rows.
public enum TestPostgres {
    public static let adminURL = ProcessInfo.processInfo.environment["VOXSYNC_TEST_POSTGRES_URL"]
    public static var available: Bool { adminURL != nil }
    public static let logger = Logger(label: "voxsync.tests.postgres")

    /// A new, empty database on the test server.
    public static func freshDatabase() async throws -> PostgresURL {
        try await PostgresAdmin.createDatabase(on: PostgresURL(parsing: adminURL!), prefix: "vs_", logger: logger)
    }

    /// Runs `body` with a connected pool of two connections for `url` (two: a test may hold a
    /// transaction open on one while it writes on the other).
    public static func withClient<T: Sendable>(_ url: PostgresURL, _ body: @escaping @Sendable (PostgresClient) async throws -> T) async throws -> T {
        try await PostgresAdmin.withClient(url, poolSize: 2, logger: logger, body)
    }
}
