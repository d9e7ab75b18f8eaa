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
        let admin = try PostgresURL(parsing: adminURL!)
        let name = "vs_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try await withClient(admin) { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        var url = admin
        url.database = String(name)
        return url
    }

    /// Runs `body` with a connected pool for `url`.
    public static func withClient<T: Sendable>(_ url: PostgresURL, _ body: @escaping @Sendable (PostgresClient) async throws -> T) async throws -> T {
        let client = PostgresClient(configuration: RemoteStore.clientConfiguration(url: url, poolSize: 2), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }
}


/// Runs `body` while the pools of `remotes` run.
public func withRemote<T: Sendable>(_ remotes: RemoteStore..., body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        for remote in remotes {
            group.addTask {
                await remote.run()
                return nil
            }
        }
        defer { group.cancelAll() }
        return try await body()
    }
}
