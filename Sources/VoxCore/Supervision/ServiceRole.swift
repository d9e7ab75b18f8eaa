/// The worker processes of a voxsync instance, in start order.
public enum ServiceRole: String, Sendable, CaseIterable, Hashable, Codable {
    case cache
    case sync
    case metrics
    case prefetch

    /// Start order; shutdown runs it backwards.
    public static let startOrder: [ServiceRole] = [.cache, .sync, .metrics, .prefetch]
}

/// How a worker process ended, as `waitpid` reports it.
public enum ExitReason: Sendable, Equatable, CustomStringConvertible {
    case exited(code: Int32)
    case signaled(signal: Int32)
    /// The process could not be started at all.
    case spawnFailed(String)

    public var description: String {
        switch self {
        case .exited(let code): "exited with code \(code)"
        case .signaled(let signal): "killed by \(Self.signalName(signal))"
        case .spawnFailed(let why): "could not start: \(why)"
        }
    }

    static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
            8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
            14: "SIGALRM", 15: "SIGTERM", 19: "SIGSTOP",
        ]
        return names[signal] ?? "signal \(signal)"
    }
}
