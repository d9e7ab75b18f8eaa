/// Where Redis is: `redis://[:password@]host[:port][/db]` or `unix:///path/to/redis.sock`
/// (`?db=N&password=...` for a socket). `rediss://` (TLS) is refused: the hiredis Debian ships
/// (0.14) has no TLS.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    public var endpoint: Endpoint
    public var password: String?
    public var database: Int

    public init(parsing text: String) throws(ConfigurationError) {
        if text.hasPrefix("rediss://") {
            throw ConfigurationError("redis_url: rediss:// (TLS) is not supported by the hiredis this build links; use a TLS tunnel or a Unix socket")
        }
        if text.hasPrefix("unix://") {
            let rest = text.dropFirst("unix://".count)
            let parts = rest.split(separator: "?", maxSplits: 1)
            guard let path = parts.first, path.hasPrefix("/") else {
                throw ConfigurationError("redis_url: unix:// needs an absolute socket path, e.g. unix:///var/run/redis/redis.sock")
            }
            endpoint = .unixSocket(path: String(path))
            var database = 0
            var password: String?
            for item in parts.count > 1 ? parts[1].split(separator: "&") : [] {
                let pair = item.split(separator: "=", maxSplits: 1).map(String.init)
                switch (pair.first, pair.count == 2 ? pair[1] : nil) {
                case ("db", let value?):
                    guard let number = Int(value), (0...15).contains(number) else { throw ConfigurationError("redis_url: db must be 0-15") }
                    database = number
                case ("password", let value?): password = value
                default: throw ConfigurationError("redis_url: unknown parameter '\(pair.first ?? "")'; known: db, password")
                }
            }
            self.database = database
            self.password = password
            return
        }
        guard text.hasPrefix("redis://") else {
            throw ConfigurationError("redis_url must start with redis:// or unix://")
        }
        var rest = Substring(text.dropFirst("redis://".count))
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            password = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).last.map(String.init)
            rest = rest[rest.index(after: at)...]
        }
        let hostPort = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let authority = String(hostPort.first ?? "")
        var host = authority
        var port = 6379
        if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let number = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(number) else {
                throw ConfigurationError("redis_url: the port must be 1-65535")
            }
            port = number
        }
        guard !host.isEmpty else { throw ConfigurationError("redis_url names no host: redis://HOST:6379") }
        var database = 0
        if hostPort.count == 2, !hostPort[1].isEmpty {
            guard let number = Int(hostPort[1]), (0...15).contains(number) else { throw ConfigurationError("redis_url: the database must be 0-15") }
            database = number
        }
        self.endpoint = .tcp(host: host, port: port)
        self.password = password?.isEmpty == true ? nil : password
        self.database = database
    }

    public var description: String {
        let credentials = password == nil ? "" : ":***@"
        switch endpoint {
        case .tcp(let host, let port): return "redis://\(credentials)\(host):\(port)/\(database)"
        case .unixSocket(let path): return "unix://\(path)\(database == 0 ? "" : "?db=\(database)")"
        }
    }
}
