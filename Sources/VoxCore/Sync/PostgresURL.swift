import Foundation

/// A PostgreSQL connection URL, parsed and checked:
/// `postgres://user:password@host:port/database?sslmode=require`, or a Unix socket directory as
/// libpq spells it: `postgres://user@/database?host=/var/run/postgresql` (port, default 5432,
/// picks the socket file `.s.PGSQL.<port>` in it).
///
/// `sslmode` is `disable`, `prefer` (the default: TLS when the server offers it) or `require`
/// (as for Cloud SQL, RDS and Neon); `verify-ca` and `verify-full` are taken as `require` with
/// certificate verification. The password is kept out of `description`, which is what logs and
/// `voxsync status` show.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, Equatable {
        case disable, prefer, require
        case verifyFull = "verify-full"
    }

    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    public var endpoint: Endpoint
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// `application_name`, shown in `pg_stat_activity`.
    public var applicationName: String

    public init(parsing text: String) throws(ConfigurationError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql" else {
            throw ConfigurationError("postgres_url must start with postgres:// or postgresql://; got '\(Self.redact(text))'")
        }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] {
            guard let value = item.value else { continue }
            query[item.name] = value
        }
        for name in query.keys where !["sslmode", "host", "application_name", "port"].contains(name) {
            throw ConfigurationError("postgres_url has the parameter '\(name)', which voxsync does not use; known: sslmode, host, port, application_name")
        }
        let port = components.port ?? query["port"].flatMap(Int.init) ?? 5432
        guard (1...65_535).contains(port) else {
            throw ConfigurationError("postgres_url has port \(port); a port is 1-65535")
        }
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            endpoint = .unixSocket(path: socketDirectory + "/.s.PGSQL.\(port)")
        } else if let host = components.host, !host.isEmpty {
            endpoint = .tcp(host: host, port: port)
        } else {
            throw ConfigurationError("postgres_url names no server: give a host (postgres://user@host/db) or a socket directory (?host=/path)")
        }
        guard let user = components.user, !user.isEmpty else {
            throw ConfigurationError("postgres_url names no user: postgres://USER@host/database")
        }
        self.user = user
        self.password = components.password
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.isEmpty, !path.contains("/") else {
            throw ConfigurationError("postgres_url names no database: postgres://user@host/DATABASE")
        }
        database = path
        switch query["sslmode"] ?? "prefer" {
        case "disable", "allow": tls = .disable
        case "prefer": tls = .prefer
        case "require": tls = .require
        case "verify-ca", "verify-full": tls = .verifyFull
        case let other:
            throw ConfigurationError("postgres_url has sslmode=\(other); use disable, prefer, require or verify-full")
        }
        applicationName = query["application_name"] ?? "voxsync"
    }

    /// The URL with the password replaced by `***`.
    public var description: String {
        let credentials = password == nil ? user : "\(user):***"
        switch endpoint {
        case .tcp(let host, let port):
            return "postgres://\(credentials)@\(host):\(port)/\(database)?sslmode=\(tls.rawValue)"
        case .unixSocket(let path):
            return "postgres://\(credentials)@/\(database)?host=\(path)"
        }
    }

    /// The URL with its password: for handing to a process, never for a log.
    public var unredactedString: String {
        let credentials = password.map { "\(user):\($0)" } ?? user
        switch endpoint {
        case .tcp(let host, let port):
            return "postgres://\(credentials)@\(host):\(port)/\(database)?sslmode=\(tls.rawValue)&application_name=\(applicationName)"
        case .unixSocket(let path):
            let directory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
            let port = path.split(separator: ".").last.map(String.init) ?? "5432"
            return "postgres://\(credentials)@/\(database)?host=\(directory)&port=\(port)&application_name=\(applicationName)"
        }
    }

    /// `text` with any password replaced by `***`, for messages about a URL that did not parse.
    public static func redact(_ text: String) -> String {
        ConfigurationLoader.redacted(text)
    }
}
