/// When and how fast a supervisor restarts a worker. Defaults are documented in README.md
/// ("Process model").
public struct RestartPolicy: Sendable, Equatable {
    /// Delay before restart number n of a run of failures: from 10 ms, doubling, jittered, up to
    /// 5 s. systemd's default RestartSec alone is 100 ms; a voice unlock cannot wait that long.
    public var backoff = ExponentialBackoff(initial: .milliseconds(10), maximum: .seconds(5), multiplier: 2, jitter: 0.5)
    /// A worker that stayed ready this long is healthy again: its next failure starts the
    /// backoff from the beginning.
    public var stableAfter: Duration = .seconds(10)
    /// This many restarts within `flapWindow` mark a worker as flapping: it is then retried at
    /// the backoff cap, and reported, while the other workers keep running.
    public var flapThreshold = 5
    public var flapWindow: Duration = .seconds(60)
    /// Heartbeats are sent this often to every running worker.
    public var heartbeatInterval: Duration = .milliseconds(500)
    /// A worker not heard from for this long (hung, SIGSTOPped) is killed and restarted.
    public var heartbeatTimeout: Duration = .seconds(3)

    public init() {}
}
