import Foundation
import Logging
import PostgresNIO
import VoxCore

extension RemoteStore {
    /// Runs `body` while this store's connection pool runs, then stops the pool. For one-shot
    /// tools (tests, benchmarks); a store's pool runs once, so call this once per store.
    public func whileRunning<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                await self.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }
}

/// Administrative helpers for tests and benchmarks: a short-lived client, a new database.
public enum PostgresAdmin {
    /// Runs `body` with a connected pool of `poolSize` connections for `url`.
    public static func withClient<T: Sendable>(
        _ url: PostgresURL, poolSize: Int = 1, logger: Logger, _ body: @escaping @Sendable (PostgresClient) async throws -> T
    ) async throws -> T {
        let client = PostgresClient(configuration: RemoteStore.clientConfiguration(url: url, poolSize: poolSize), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    /// Creates an empty database named `<prefix><random>` on `admin`'s server and returns its URL.
    public static func createDatabase(on admin: PostgresURL, prefix: String, logger: Logger) async throws -> PostgresURL {
        let name = prefix + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        _ = try await withClient(admin, logger: logger) { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        var url = admin
        url.database = name
        return url
    }
}
