/// The rule that ties the chaos task's signals to the supervisor's restart counts.
///
/// Only the chaos task signals workers, and it signals a worker only through the pid the
/// supervisor reports for it right then, while that process is alive and not already stopped
/// by the chaos task. Each such process ends exactly once: a SIGKILL ends it, a SIGSTOP ends it
/// when the supervisor's heartbeat timeout SIGKILLs it. So the rule is exact:
///
///     restarts of a worker == distinct pids of it the chaos task signalled
///
/// A signal that finds the process already gone (it exited between the status answer and the
/// `kill`, `kill` fails with ESRCH, or /proc shows it a zombie) is not counted — that is the
/// only coalescing, and the chaos task reports how often it happened. Any restart beyond the
/// rule is a worker that died on its own (a crash under chaos), and is a failure.
public struct RestartAccounting: Sendable, Equatable {
    /// Distinct victim pids per role.
    public private(set) var victims: [String: Set<Int32>] = [:]
    /// Signals that found their process already gone.
    public private(set) var missed = 0

    public init() {}

    /// A signal was sent to `pid`, the current process of `role`; `landed` tells whether the
    /// process was alive to receive it.
    public mutating func signalled(role: String, pid: Int32, landed: Bool) {
        if landed {
            victims[role, default: []].insert(pid)
        } else {
            missed += 1
        }
    }

    public func expectedRestarts(_ role: String) -> Int { victims[role]?.count ?? 0 }

    /// One line per role whose counts disagree: expected from the signals, reported by the
    /// supervisor's status, and by the metrics endpoint (nil when it could not be scraped).
    public func mismatches(roles: [String], status: [String: Int], metrics: [String: Int]?) -> [String] {
        roles.compactMap { role in
            let expected = expectedRestarts(role)
            let reported = status[role] ?? 0
            var problems: [String] = []
            if reported != expected { problems.append("status says \(reported) restarts") }
            if let metrics {
                let scraped = metrics[role] ?? 0
                if scraped != reported { problems.append("metrics say \(scraped)") }
            } else {
                problems.append("metrics could not be scraped")
            }
            return problems.isEmpty ? nil : "\(role): \(expected) signalled, " + problems.joined(separator: ", ")
        }
    }
}
